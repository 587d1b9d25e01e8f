"""The standard workload through the Python original (PyPI hashstash 1.2.0).

Prints one JSON record per engine, with the fields `hashstash profile --json` prints:
engine, items, set_per_s, get_per_s, update_per_s. Run by benches/python_side_by_side.sh.
"""
import argparse
import json
import os
import tempfile
import time

from hashstash import HashStash


def item(i):
    return {"name": "cat", "i": i, "vals": list(range(10))}


def measure(engine, items, base):
    root = tempfile.mkdtemp(prefix="hashstash-python-", dir=base)
    stash = HashStash(root_dir=root, engine=engine, dbname="profile", clear=True)
    keys = [f"key{i}" for i in range(items)]
    values = [item(i) for i in range(items)]

    started = time.perf_counter()
    for key, value in zip(keys, values):
        stash[key] = value
    set_secs = time.perf_counter() - started

    started = time.perf_counter()
    wrong = 0
    for key, value in zip(keys, values):
        wrong += stash[key] != value
    get_secs = time.perf_counter() - started
    if wrong:
        raise SystemExit(f"{engine}: {wrong} values read back wrong")

    # The batch goes into a stash of its own, as `hashstash profile` does.
    batched = HashStash(root_dir=root, engine=engine, dbname="profile-batch", clear=True)
    started = time.perf_counter()
    batched.update(dict(zip(keys, values)))
    update_secs = time.perf_counter() - started
    if len(batched) != items:
        raise SystemExit(f"{engine}: the batch stored {len(batched)} of {items}")
    stash.clear()
    batched.clear()
    return {
        "engine": engine,
        "serializer": getattr(stash, "serializer", None),
        "compress": getattr(stash, "compress", None),
        "items": items,
        "set_per_s": items / set_secs,
        "get_per_s": items / get_secs,
        "update_per_s": items / update_secs,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="lmdb,sqlite,pairtree,memory")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    for engine in args.engines.split(","):
        record = measure(engine, args.items, args.dir)
        print(json.dumps(record, default=str), flush=True)


if __name__ == "__main__":
    main()
