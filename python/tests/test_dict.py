"""The dictionary API of the Python original, on every file engine and memory."""

import pytest

from hashstash_rs import HashStash, InvalidOptionError

ENGINES = ["lmdb", "pairtree", "sqlite", "diskcache", "memory"]


@pytest.fixture(params=ENGINES)
def stash(request):
    return HashStash("dict_tests", engine=request.param, clear=True)


def test_set_get_contains_len_delete(stash):
    stash["a"] = {"name": "cat", "vals": [1, 2.5, None, True]}
    assert stash["a"] == {"name": "cat", "vals": [1, 2.5, None, True]}
    assert "a" in stash and "b" not in stash
    assert len(stash) == 1 and stash  # truthy when it holds entries, as a dict is
    assert stash.get("b") is None
    assert stash.get("b", 7) == 7
    with pytest.raises(KeyError):
        stash["b"]
    del stash["a"]
    assert "a" not in stash and len(stash) == 0 and not stash
    with pytest.raises(KeyError):
        del stash["a"]


def test_unhashable_and_structured_keys(stash):
    keys = ["bad", ("bad", "good2"), {"goodness": "bad"}, ["bad", "good"], {"bad", "good"},
            frozenset({1, 2}), 5, 2**70, -(2**100), 1.5, None, b"raw", (1, {"x": [2]})]
    for i, key in enumerate(keys):
        stash[key] = i
    for i, key in enumerate(keys):
        assert stash[key] == i, key
    assert len(stash) == len(keys)


def test_equal_keys_are_one_entry(stash):
    stash[{"a": 1, "b": 2}] = "first"
    stash[{"b": 2, "a": 1}] = "second"  # same dict, other order
    stash[{3, 1, 2}] = "set"
    assert stash[{1, 2, 3}] == "set"
    assert stash[frozenset({2, 3, 1})] == "set"
    assert len(stash) == 2
    # A tuple is a list, as in the Rust crate: ("a", "b") is ["a", "b"].
    stash[("x", "y")] = "tuple"
    assert stash[["x", "y"]] == "tuple"


def test_values_round_trip(stash):
    value = {"int": 3, "big": 2**80, "neg": -(2**65), "float": 0.1, "text": "héllo",
             "bytes": b"\x00\xff", "list": [1, [2, [3]]], "none": None, "bool": False,
             "nested": {"k": {"k2": [{"a": 1}]}}, 7: "int key"}
    stash["v"] = value
    assert stash["v"] == value
    # Tuples and sets come back as lists (as JSON and MessagePack have them).
    stash["t"] = (1, 2)
    assert stash["t"] == [1, 2]
    stash["s"] = {3}
    assert stash["s"] == [3]


def test_keys_values_items_iterate_decoded(stash):
    stash.update({"k1": 1, "k2": 2})
    stash[{"x", "y"}] = 3
    assert sorted(stash.values()) == [1, 2, 3]
    keys = list(stash.keys())
    assert {"x", "y"} in keys and "k1" in keys
    assert dict((k, v) for k, v in stash.items() if isinstance(k, str)) == {"k1": 1, "k2": 2}
    assert sorted(k for k in stash if isinstance(k, str)) == ["k1", "k2"]


def test_dict_methods(stash):
    stash["k"] = "cat"
    assert stash.pop("k") == "cat"
    assert "k" not in stash
    assert stash.pop("k", "gone") == "gone"
    with pytest.raises(KeyError):
        stash.pop("k")
    assert stash.setdefault("k", "new_cat_default") == "new_cat_default"
    assert stash.setdefault("k", "other") == "new_cat_default"
    stash.update({"new_key_of_badness": "cat"}, more=1)
    assert stash["new_key_of_badness"] == "cat" and stash["more"] == 1
    stash.update([("pair", 2)])
    assert stash["pair"] == 2
    other = HashStash(engine="memory", dbname="other").clear()
    other[[1, 2, 3]] = "cat"
    stash.update(other)
    assert stash[[1, 2, 3]] == "cat"
    assert stash.clear() is stash and len(stash) == 0


def test_update_many_in_batches(stash):
    stash.update({f"key{i}": {"i": i} for i in range(10_000)})
    assert len(stash) == 10_000
    assert stash["key9999"] == {"i": 9999}
    stash.update((f"pair{i}", i) for i in range(5000))  # a generator of pairs
    assert len(stash) == 15_000 and stash["pair4999"] == 4999


def test_update_stops_at_a_bad_value(stash):
    # The bad value is in the first batch of 4096: nothing of that batch is written.
    with pytest.raises(TypeError, match="no portable form"):
        stash.update({"a": 1, "b": object(), "c": 3})
    assert "a" not in stash and "c" not in stash
    # In a later batch: the batches before it are written, in whole.
    items = [(f"k{i}", i) for i in range(5000)] + [("bad", object())]
    with pytest.raises(TypeError):
        stash.update(items)
    assert len(stash) == 4096 and "k4095" in stash and "k4096" not in stash


def test_persistence_across_handles(root_dir):
    first = HashStash("persist", engine="lmdb")
    first["k"] = [1, 2]
    again = HashStash("persist", engine="lmdb")
    assert again["k"] == [1, 2]
    assert again.path == first.path and again == first
    assert len({first, again}) == 1  # equal stashes hash alike


def test_raw_items_and_codecs(stash):
    stash[{"good", "bad"}] = "cat"
    (key_bytes, value_bytes), = list(stash._items())
    assert stash.decode_key(key_bytes) == {"good", "bad"}
    assert stash.decode_value(value_bytes) == "cat"
    assert stash.encode_key({"bad", "good"}) == key_bytes


def test_subs_tmp_and_config(stash):
    sub = stash.sub("child")
    sub["k"] = 1
    assert "k" not in stash and sub["k"] == 1
    with stash.tmp() as tmp_stash:
        tmp_stash["key"] = "value"
        assert "key" in tmp_stash
    assert "key" not in stash
    config = stash.to_dict()
    assert config["engine"] == stash.engine
    assert config["is_function_stash"] is False
    assert repr(stash).endswith(f"HashStash({stash.path})")


def test_append_mode_keeps_versions(root_dir):
    stash = HashStash("append", engine="pairtree", append_mode=True, clear=True)
    key = {"name": "cat"}
    stash[key] = {"goodness": "good"}
    stash[key] = {"goodness": "bad"}
    assert stash.get(key) == {"goodness": "bad"}
    assert stash.get_all(key) == [{"goodness": "good"}, {"goodness": "bad"}]
    meta = stash.get_all(key, with_metadata=True)
    assert [m["_version"] for m in meta] == [1, 2]
    assert meta[0]["_timestamp"] <= meta[1]["_timestamp"]
    assert meta[1]["_value"] == {"goodness": "bad"}


def test_bad_options_are_clear_errors():
    with pytest.raises(InvalidOptionError, match="engine"):
        HashStash(engine="nope")
    with pytest.raises(InvalidOptionError, match="compress"):
        HashStash(compress="nope")
    with pytest.raises(TypeError, match="unexpected option"):
        HashStash(colour="red")
    with pytest.raises(TypeError):
        HashStash(append_mode="yes")


def test_unportable_values_need_pickle(root_dir):
    class Thing:
        def __init__(self, n):
            self.n = n

        def __eq__(self, other):
            return isinstance(other, Thing) and other.n == self.n

    stash = HashStash("portable", clear=True)
    with pytest.raises(TypeError, match='serializer="pickle"'):
        stash["t"] = object()
    pickled = HashStash("pickled", serializer="pickle", clear=True)
    pickled["t"] = {"thing": (1, 2)}
    assert pickled["t"] == {"thing": [1, 2]}  # plain data stays plain, readable anywhere
    import datetime

    pickled["d"] = datetime.date(2026, 1, 2)
    assert pickled["d"] == datetime.date(2026, 1, 2)
    # The same stash opened without pickle refuses to load it.
    from hashstash_rs import DecodeError

    plain = HashStash("pickled")
    with pytest.raises(DecodeError, match="pickle"):
        plain["d"]


def test_corrupt_bytes_are_a_typed_error(stash):
    from hashstash_rs import DecodeError

    with pytest.raises(DecodeError):
        stash.decode_value(b"\xff\x00 not a value")
    with pytest.raises(DecodeError):
        stash.decode_key(b"\xff\xff")


def _flip_in_files(folder, needle):
    """Flips a bit in the middle of every copy of ``needle`` below ``folder``."""
    import pathlib

    flipped = 0
    root = pathlib.Path(folder)
    for path in [root] if root.is_file() else root.rglob("*"):
        if not path.is_file():
            continue
        data = bytearray(path.read_bytes())
        at = data.find(needle)
        while at >= 0:
            data[at + len(needle) // 2] ^= 0x20
            flipped += 1
            at = data.find(needle, at + 1)
        path.write_bytes(bytes(data))
    return flipped


@pytest.mark.parametrize("engine", ["pairtree", "sqlite"])
def test_corrupt_entries_follow_on_corrupt(root_dir, engine):
    from hashstash_rs import DecodeError

    marker = b"CORRUPT-ME-PLEASE-0123456789"
    options = dict(engine=engine, compress="raw", b64=False)
    stash = HashStash("corrupt", clear=True, **options)
    stash.update({f"fine {i}": {"i": i} for i in range(20)})
    stash["victim"] = {"i": 1000, "text": marker.decode()}
    path = stash.path
    del stash
    assert _flip_in_files(path, marker) > 0

    # The default: nothing is silently left out; the engine's checksum
    # catches the flipped bit and the error says so.
    failing = HashStash("corrupt", **options)
    with pytest.raises(DecodeError, match="checksum"):
        list(failing.items())
    assert failing.skipped_corrupt() == []

    # Skip: the 20 good entries, and the bad one listed once, with its cause.
    skipping = HashStash("corrupt", on_corrupt="skip", **options)
    assert sorted(v["i"] for v in skipping.values()) == list(range(20))
    assert len(list(skipping.keys())) == 20
    assert len(skipping.skipped_corrupt()) == 1
    assert "checksum" in skipping.skipped_corrupt()[0]
    # DataFrames follow the same policy (the crate's scan).
    assert len(skipping.df) == 20

    with pytest.raises(InvalidOptionError, match="skip"):
        HashStash("corrupt", on_corrupt="ignore", **options)


def test_on_corrupt_is_a_property_that_travels_to_other_processes(root_dir):
    import pickle

    stash = HashStash("policy", clear=True)
    assert stash.on_corrupt == "fail"
    stash.on_corrupt = "skip"
    assert stash.on_corrupt == "skip"
    # A stash sent to a worker process (map with num_proc) keeps its policy.
    assert pickle.loads(pickle.dumps(stash)).on_corrupt == "skip"
    stash.on_corrupt = "fail"
    assert pickle.loads(pickle.dumps(stash)).on_corrupt == "fail"
    with pytest.raises(InvalidOptionError, match="skip"):
        stash.on_corrupt = "ignore"
    assert stash.on_corrupt == "fail"
    assert HashStash("policy", on_corrupt="skip").on_corrupt == "skip"


@pytest.mark.parametrize("engine", ["lmdb", "pairtree", "sqlite"])
def test_iteration_streams_past_the_read_ahead(root_dir, engine):
    # More entries than the reader thread reads ahead (1024), so that it waits for Python.
    stash = HashStash("streamed", engine=engine, clear=True)
    stash.update({f"k{i}": i for i in range(3000)})
    assert sorted(stash.values()) == list(range(3000))
    assert dict(stash.items()) == {f"k{i}": i for i in range(3000)}

    # An iteration left half-way does not hold the stash: writes and new scans go on.
    started = iter(stash.keys())
    assert next(started).startswith("k")
    stash["after"] = -1
    assert len(list(stash.keys())) == 3001
    del started

    # Removing what the iteration has reached, while it goes on, removes everything.
    for key in stash.keys():
        del stash[key]
    assert len(stash) == 0


def test_iterators_from_threads_see_every_entry_once(root_dir):
    import threading

    stash = HashStash("shared-iterator", clear=True)
    stash.update({i: i for i in range(5000)})
    shared = stash.values()
    seen = [[] for _ in range(4)]

    def drain(out):
        for value in shared:
            out.append(value)

    threads = [threading.Thread(target=drain, args=(out,)) for out in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v for out in seen for v in out) == list(range(5000))
