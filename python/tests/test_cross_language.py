"""One store for Python, Rust and the command line.

Python keys give the canonical bytes the Rust crate pins in its own golden test
(``tests/keys.rs``), and stashes written from one side are read from the other through the
Rust ``hashstash`` command line.
"""

import json
import subprocess

import pytest

from hashstash_rs import HashStash, encode_key

# The same cases, the same bytes as the Rust crate's `golden_key_bytes` test.
GOLDEN = [
    ("bad", "63626164"),
    (1, "01"),
    (-1, "20"),
    (1000, "1903e8"),
    (1.5, "f93e00"),
    (0.1, "fb3fb999999999999a"),
    (True, "f5"),
    (None, "f6"),
    (("bad", "good"), "826362616464676f6f64"),
    (["bad", "good"], "826362616464676f6f64"),
    ({"b": 2, "a": 1}, "a2616101616202"),
    ({"good", "bad"}, "d90102826362616464676f6f64"),
    (frozenset({"good", "bad"}), "d90102826362616464676f6f64"),
    (2**128 - 1, "c250ffffffffffffffffffffffffffffffff"),
    (-(2**127), "c3507fffffffffffffffffffffffffffffff"),
]


@pytest.mark.parametrize("key,golden", GOLDEN, ids=[repr(k) for k, _ in GOLDEN])
def test_keys_are_the_crates_canonical_bytes(key, golden):
    assert encode_key(key).hex() == golden


def run(cli, root, *args):
    done = subprocess.run([cli, "--root-dir", str(root), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"hashstash {' '.join(args)}: {done.stderr}")
    return done.stdout


def test_python_writes_the_cli_reads(cli, tmp_path):
    root = tmp_path / "shared"
    stash = HashStash(root, engine="lmdb")
    stash["cat"] = {"name": "cat", "vals": [1, 2.5, None]}
    stash[("bad", "good")] = "tuple key"
    stash[{"goodness": "bad", "n": 3}] = [1, 2, 3]
    stash[2**70] = "big"
    assert json.loads(run(cli, root, "get", '"cat"')) == {"name": "cat", "vals": [1, 2.5, None]}
    assert json.loads(run(cli, root, "get", '["bad", "good"]')) == "tuple key"
    assert json.loads(run(cli, root, "get", '{"n": 3, "goodness": "bad"}')) == [1, 2, 3]
    assert run(cli, root, "len").strip() == "4"
    keys = [json.loads(line) for line in run(cli, root, "keys").splitlines()]
    assert "cat" in keys and ["bad", "good"] in keys
    # SQL from the Rust side over what Python wrote.
    out = run(cli, root, "sql", "--format", "json", "SELECT name FROM stash WHERE name IS NOT NULL")
    assert [json.loads(line) for line in out.splitlines()] == [{"name": "cat"}]


def test_the_cli_writes_python_reads(cli, tmp_path):
    root = tmp_path / "shared"
    run(cli, root, "set", '{"b": [1, 2], "a": "x"}', '{"from": "rust", "n": 18446744073709551615}')
    run(cli, root, "set", '"plain"', '[true, null, 0.25]')
    stash = HashStash(root, engine="lmdb")
    assert stash[{"a": "x", "b": (1, 2)}] == {"from": "rust", "n": 2**64 - 1}
    assert stash["plain"] == [True, None, 0.25]
    assert len(stash) == 2
    assert {"a": "x", "b": [1, 2]} in list(stash.keys())


def test_memoized_results_are_a_table_for_the_cli(cli, tmp_path):
    root = tmp_path / "shared"
    stash = HashStash(root, engine="lmdb")

    def area(w, h):
        return {"area": w * h}

    stash.run(area, 3, h=4)
    names = stash.function_names()
    assert len(names) == 1 and names[0].startswith("test_cross_language.")
    dbname = f"{stash.to_dict()['dbname']}/stashed_result/{names[0]}"
    out = run(cli, root, "--dbname", dbname, "sql", "--format", "json", "SELECT area FROM stash")
    assert [json.loads(line) for line in out.splitlines()] == [{"area": 12}]
