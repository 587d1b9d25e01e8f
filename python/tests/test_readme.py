"""The Python original's README, section by section, run against hashstash_rs.

Each test is one of its examples with the import switched. Where behaviour differs on
purpose it says so (a tuple key is the list key with the same items, as in the Rust crate).
"""

import random
import time

import pandas as pd
import pytest

import helpers
from hashstash_rs import HashStash, decode, deserialize, encode, serialize, stash_mapped


def test_creating_a_stash(root_dir):
    stash = HashStash()
    stash = HashStash(
        root_dir="project_stash",
        dbname="sub_stash",
        engine="pairtree",
        serializer="hashstash",
        compress="lz4",
        b64=True,
        append_mode=False,
        clear=True,
    )
    assert repr(stash).startswith("PairtreeHashStash(")
    config = stash.to_dict()
    assert config["root_dir"] == str(root_dir / "project_stash")
    assert (config["dbname"], config["engine"], config["serializer"]) == ("sub_stash", "pairtree", "hashstash")
    assert (config["compress"], config["b64"], config["append_mode"]) == ("lz4", True, False)
    assert config["is_function_stash"] is False


@pytest.fixture
def readme_stash():
    stash = HashStash("project_stash", dbname="sub_stash", engine="pairtree", clear=True)

    def func_key(x):
        pass

    lambda_key = lambda x: x  # noqa: E731
    df_key = pd.DataFrame({"name": ["cat"], "goodness": ["bad"]})
    stash["bad"] = "cat"
    stash[("bad", "good")] = "cat"
    stash[{"goodness": "bad"}] = "cat"
    stash[["bad", "good"]] = "cat"
    stash[{"bad", "good"}] = "cat"
    stash[func_key] = "cat"
    stash[lambda_key] = "cat"
    stash[df_key] = "cat"
    return stash, func_key, lambda_key, df_key


def test_stashing_objects(readme_stash):
    stash, func_key, lambda_key, df_key = readme_stash
    got = (stash["bad"], stash[("bad", "good")], stash[{"goodness": "bad"}], stash[["bad", "good"]],
           stash[{"bad", "good"}], stash[func_key], stash[lambda_key], stash[df_key])
    assert got == ("cat",) * 8


def test_works_like_a_dictionary(readme_stash):
    stash, func_key, lambda_key, df_key = readme_stash
    assert stash.get(df_key) == "cat"
    assert stash.get("fake_key") is None
    assert df_key in stash
    # 7, not the original's 8: ("bad", "good") and ["bad", "good"] are one key here, as
    # they are in the Rust crate and the CLI (JSON has no tuples).
    assert len(stash) == 7
    for value in stash.values():
        assert value == "cat"
    items = list(stash.items())
    assert len(items) == 7 and {"good", "bad"} in [k for k, _ in items]
    assert stash.pop(df_key) == "cat"
    assert df_key not in stash
    assert stash.setdefault(df_key, "new_cat_default") == "new_cat_default"
    assert stash.get(df_key) == "new_cat_default"
    stash.update({"new_key_of_badness": "cat"})
    assert stash["new_key_of_badness"] == "cat"
    another_stash = HashStash(engine="memory").clear()
    another_stash[[1, 2, 3]] = "cat"
    stash.update(another_stash)
    assert stash[[1, 2, 3]] == "cat"


def test_under_the_hood(readme_stash):
    stash, *_ = readme_stash
    for encoded_key, encoded_value in stash._items():
        decoded_key = stash.decode_key(encoded_key)
        assert stash.encode_key(decoded_key) == encoded_key
        assert stash.decode_value(encoded_value) == "cat"
    assert len(list(stash._keys())) == len(list(stash._values())) == len(stash)


num_times_computed = 0


def expensive_computation(names, goodnesses=["good"]):
    global num_times_computed
    num_times_computed += 1
    ld = []
    for _ in range(10_000):
        ld.append({"name": random.choice(names), "goodness": random.choice(goodnesses),
                   "random": random.random()})
    return random.sample(ld, k=10)


def test_stashing_function_results():
    global num_times_computed
    num_times_computed = 0
    names, goodnesses = ["cat", "dog"], ["good", "bad"]
    expensive_computation(names, goodnesses=goodnesses)
    expensive_computation(names, goodnesses=goodnesses)
    assert num_times_computed == 2

    functions_stash = HashStash("functions_stash", clear=True)
    stashed_result1 = functions_stash.run(expensive_computation, names, goodnesses=goodnesses)
    stashed_result2 = functions_stash.run(expensive_computation, names, goodnesses=goodnesses)
    stashed_result3 = functions_stash.run(expensive_computation, names, goodnesses=goodnesses)
    assert stashed_result1 == stashed_result2 == stashed_result3
    assert num_times_computed == 3

    @functions_stash.stashed_result
    def expensive_computation2(names, goodnesses=["good"]):
        return expensive_computation(names, goodnesses=goodnesses)

    stashed_result4 = expensive_computation2(names, goodnesses=goodnesses)
    stashed_result5 = expensive_computation2(names, goodnesses=goodnesses)
    stashed_result6 = expensive_computation2(names, goodnesses=goodnesses)
    assert stashed_result4 == stashed_result5 == stashed_result6
    assert num_times_computed == 4

    func_stash = expensive_computation.stash
    func_stash2 = expensive_computation2.stash
    assert len(func_stash) == len(func_stash2) == 1
    for key, value in func_stash2.items():
        args, kwargs = key
        assert args == [names] and kwargs == {"goodnesses": goodnesses}
    stashed_result7 = func_stash2.get(((names,), {"goodnesses": goodnesses}))
    stashed_result8 = func_stash2.get_func(names, goodnesses=goodnesses)
    assert stashed_result7 == stashed_result8 == stashed_result5 == stashed_result6

    # Assembling DataFrames: the function's result, a list of 10 records, as 10 rows.
    ld = func_stash2.ld
    assert len(ld) == 10
    assert [(r["name"], r["goodness"], r["random"]) for r in ld] == [
        (d["name"], d["goodness"], d["random"]) for d in stashed_result5]
    assert func_stash2.df.height == 10


def expensive_computation3(name, goodnesses=["good"]):
    time.sleep(0.05)
    helpers.count_call(name)
    return {"name": name, "goodness": random.choice(goodnesses)}


def test_mapping_functions(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    calls.write_text("")
    monkeypatch.setenv(helpers.CALLS_FILE_ENV, str(calls))
    functions_stash = HashStash("functions_stash", clear=True)
    stash_map = functions_stash.map(expensive_computation3, ["cat", "dog", "aardvark", "zebra"],
                                    goodnesses=["good", "bad"], num_proc=2)
    assert repr(stash_map).startswith("StashMap([StashMapRun(")
    results = list(stash_map.results_iter())
    assert [r["name"] for r in results] == ["cat", "dog", "aardvark", "zebra"]
    assert stash_map.results == results
    for (args, kwargs), result in stash_map.items():
        assert kwargs == {"goodnesses": ["good", "bad"]} and result["name"] == args[0]
    stash_map2 = functions_stash.map(expensive_computation3, ["cat", "dog", "elephant", "donkey"],
                                     goodnesses=["good", "bad"], num_proc=2)
    assert stash_map2.results[:2] == results[:2]  # stashed, not computed again
    assert sorted(calls.read_text().split()) == sorted(["cat", "dog", "aardvark", "zebra", "elephant", "donkey"])
    stash_map3 = functions_stash.map(expensive_computation3, objects=["cat", "parrot"],
                                     options=[{"goodnesses": ["bad"]}, {}], goodnesses=["good", "bad"],
                                     num_proc=4, progress=False, desc="Mapping expensive_computation3",
                                     ordered=True, _force=False)
    assert stash_map3.results[0]["goodness"] == "bad"

    @stash_mapped("function_stash", num_proc=1)
    def expensive_computation4(name, goodnesses=["good"]):
        return {"name": name, "goodness": random.choice(goodnesses)}

    mapped = expensive_computation4(["mole", "lizard", "turkey"])
    assert [r["name"] for r in mapped.results] == ["mole", "lizard", "turkey"]


def test_assembling_dataframes():
    nested_data_stash = HashStash(engine="memory", dbname="assembling_dfs")
    for n in range(100):
        nested_data_stash[f"Animal {n+1}"] = {
            "name": (cat_or_dog := random.choice(["cat", "dog"])),
            "goodness": (goodness := random.choice(["good", "bad"])),
            "etc": {"age": random.randint(1, 10),
                    "goes_to": {"heaven": True if cat_or_dog == "dog" or goodness == "good" else False}},
        }
    df = nested_data_stash.df(pandas=True)  # the original's pandas frame, indexed by _key
    assert list(df.columns) == ["name", "goodness", "etc.age", "etc.goes_to.heaven"]
    assert df.index.name == "_key" and len(df) == 100
    assert nested_data_stash.assemble_df().height == 100


def test_append_mode():
    append_stash = HashStash("readme_append_mode", engine="pairtree", append_mode=True, clear=True)
    key = {"name": "cat"}
    append_stash[key] = {"goodness": "good"}
    append_stash[key] = {"goodness": "bad"}
    assert append_stash.get(key) == {"goodness": "bad"}
    assert append_stash.get_all(key) == [{"goodness": "good"}, {"goodness": "bad"}]
    with_metadata = append_stash.get_all(key, with_metadata=True)
    assert [v["_version"] for v in with_metadata] == [1, 2]
    assert all(isinstance(v["_timestamp"], float) for v in with_metadata)
    df = append_stash.assemble_df(with_metadata=True, pandas=True)
    assert list(df["goodness"]) == ["good", "bad"]


def test_temporary_caches():
    stash = HashStash("tmp_parent", clear=True)
    with stash.tmp() as tmp_stash:
        tmp_stash["key"] = "value"
        assert "key" in tmp_stash
    assert "key" not in tmp_stash


def test_serialization_and_encoding():
    data = pd.DataFrame({"name": ["cat", "dog"], "goodness": ["good", "bad"]})
    serialized_data = serialize(data, serializer="hashstash")
    deserialized_data = deserialize(serialized_data, serializer="hashstash")
    assert data.equals(deserialized_data)
    data = b"Hello, World!"
    encoded_data = encode(data, compress="lz4", b64=True)
    assert decode(encoded_data, compress="lz4", b64=True) == data
    assert serialize({"a": 1}, serializer="json") == b'{"a":1}'
