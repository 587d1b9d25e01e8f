"""Stashed results: run, @stashed_result, .stash, get_func, map and @stash_mapped."""

import sys
import threading

import pytest

import helpers
from hashstash_rs import FunctionKey, HashStash, function_name, stash_mapped, stashed_result


@pytest.fixture
def calls(tmp_path, monkeypatch):
    path = tmp_path / "calls.txt"
    path.write_text("")
    monkeypatch.setenv(helpers.CALLS_FILE_ENV, str(path))
    return lambda: path.read_text().splitlines()


def test_run_computes_once_and_attaches_stash(calls):
    stash = HashStash("functions_stash", clear=True)
    first = stash.run(helpers.describe, "cat", goodnesses=["bad"])
    again = stash.run(helpers.describe, "cat", goodnesses=["bad"])
    assert first == again == {"name": "cat", "goodness": "bad"}
    assert calls() == ["describe cat"]
    func_stash = helpers.describe.stash
    assert len(func_stash) == 1
    ((args, kwargs), value), = list(func_stash.items())
    assert args == ["cat"] and kwargs == {"goodnesses": ["bad"]} and value == first
    assert func_stash.get((("cat",), {"goodnesses": ["bad"]})) == first
    assert func_stash.get_func("cat", goodnesses=["bad"]) == first
    assert func_stash.to_dict()["is_function_stash"] is True


def double(x, factor=2):
    helpers.count_call(f"double {x}")
    return x * factor


def test_decorator_caches_across_handles(calls):
    stash = HashStash("functions_stash", clear=True)
    stashed = stash.stashed_result(double)
    assert stashed(3) == 6 and stashed(3) == 6 and stashed(3, factor=3) == 9
    assert calls() == ["double 3", "double 3"]
    assert len(stashed.stash) == 2
    # The module-level decorator with the original's stash arguments: another handle on
    # the same stash finds the results.
    again = stashed_result("functions_stash")(double)
    assert again(3) == 6 and again(3, factor=3) == 9
    assert calls() == ["double 3", "double 3"]
    assert stashed.__wrapped__ is double and stashed.__name__ == "double"


def test_an_edited_function_gets_a_new_stash():
    def f(x):
        return x

    name = function_name(f)
    assert name.startswith("test_memo.test_an_edited_function_gets_a_new_stash.locals.f@")

    def f(x):  # noqa: F811
        return x + 1

    assert function_name(f) != name


def test_exceptions_are_raised_and_not_stored(calls):
    stash = HashStash("functions_stash", clear=True)

    @stash.stashed_result
    def fails(x):
        helpers.count_call("fails")
        raise ValueError("no")

    for _ in range(2):
        with pytest.raises(ValueError, match="no"):
            fails(1)
    assert calls() == ["fails", "fails"] and len(fails.stash) == 0


def test_threads_compute_a_call_once(calls):
    stash = HashStash("functions_stash", clear=True)
    results = []
    threads = [threading.Thread(target=lambda: results.append(stash.run(helpers.slow_square, 7)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls() == ["square 7"]
    assert len(results) == 8 and all(r["square"] == 49 for r in results)


def test_map_in_processes_computes_each_item_once(calls):
    stash = HashStash("functions_stash", clear=True)
    items = [1, 2, 3, 4, 1, 2]
    first = stash.map(helpers.slow_square, items, num_proc=2)
    assert [r["square"] for r in first.results] == [1, 4, 9, 16, 1, 4]
    # Each distinct item computed once, though 1 and 2 came twice and ran in parallel.
    assert sorted(calls()) == ["square 1", "square 2", "square 3", "square 4"]
    pids = {r["pid"] for r in first.results}
    assert len(pids) >= 1 and all(pid != __import__("os").getpid() for pid in pids)
    second = stash.map(helpers.slow_square, [1, 2, 5], num_proc=2)
    assert [r["square"] for r in second.results] == [1, 4, 25]
    assert sorted(calls()) == ["square 1", "square 2", "square 3", "square 4", "square 5"]
    items_seen = [(args, kwargs) for (args, kwargs), _ in second.items()]
    assert items_seen[0] == ((1,), {})


def test_map_options_and_common_kwargs(calls):
    stash = HashStash("functions_stash", clear=True)
    mapped = stash.map(helpers.describe, objects=["cat", "parrot"],
                       options=[{"goodnesses": ["bad"]}, {}], goodnesses=["good", "bad"])
    assert mapped.results == [{"name": "cat", "goodness": "bad"},
                              {"name": "parrot", "goodness": "good"}]
    assert "describe" in repr(mapped)


def test_map_of_a_local_function_uses_threads(calls):
    stash = HashStash("functions_stash", clear=True)

    def local(x):
        helpers.count_call(f"local {x}")
        return x + 1

    assert stash.map(local, [1, 2, 3], num_proc=3).results == [2, 3, 4]
    assert list(stash.map(local, [1, 2, 3], num_proc=3).results_iter()) == [2, 3, 4]
    assert sorted(calls()) == ["local 1", "local 2", "local 3"]


def test_stash_mapped_decorator(calls):
    @stash_mapped("function_stash", num_proc=1)
    def shout(name):
        helpers.count_call(name)
        return name.upper()

    assert shout(["mole", "lizard"]).results == ["MOLE", "LIZARD"]
    assert shout(["mole"]).results == ["MOLE"]
    assert calls() == ["mole", "lizard"]


def test_memo_functions_as_keys():
    stash = HashStash("function_keys", clear=True)

    def func_key(x):
        pass

    lambda_key = lambda x: x  # noqa: E731
    stash[func_key] = "cat"
    stash[lambda_key] = "dog"
    stash[sys.getsizeof] = "builtin"
    assert stash[func_key] == "cat" and stash[lambda_key] == "dog"
    assert stash[sys.getsizeof] == "builtin"
    assert len(stash) == 3
    keys = list(stash.keys())
    # A function of a loaded module reads back as itself; a local one as its name, which
    # finds the same entry.
    assert sys.getsizeof in keys
    local_keys = [k for k in keys if isinstance(k, FunctionKey)]
    assert len(local_keys) == 2
    assert sorted(stash[k] for k in local_keys) == ["cat", "dog"]
