"""hashstash_rs beside the Python original (PyPI hashstash==1.2.0), in one run, on the
original's standard workload: 10,000 items ``{"name": "cat", "i": i, "vals": [0..9]}`` keyed
``"key{i}"``, LMDB, the default serializer and compressor of each, on one folder (tmpfs
where given).

    python bench/vs_original.py [--items 10000] [--root /dev/shm/bench]

Prints a table: sets/s, gets/s (``stash[key]``), update of all items (seconds), and a
memoized hit (µs per call of a ``@stashed_result`` function whose result is stored).
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time


def workload(n):
    return [(f"key{i}", {"name": "cat", "i": i, "vals": list(range(10))}) for i in range(n)]


def best_of(runs, fn):
    """The fastest of `runs` timings, in seconds (the least disturbed by the machine)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def measure(make_stash, decorator, items, runs):
    data = workload(items)
    stash = make_stash("dict")

    def sets():
        for k, v in data:
            stash[k] = v

    def gets():
        for k, _ in data:
            stash[k]

    set_s, _ = best_of(runs, sets)
    get_s, _ = best_of(runs, gets)
    assert stash["key7"] == data[7][1]
    updated = make_stash("update")

    def update():
        updated.clear()
        updated.update(dict(data))

    update_s, _ = best_of(runs, update)
    assert len(updated) == items

    memo_stash = make_stash("memo")

    @decorator(memo_stash)
    def expensive(names, goodnesses=("good",)):
        return [{"name": n, "goodness": goodnesses[0]} for n in names]

    expensive(["cat", "dog"], goodnesses=["good", "bad"])  # computed and stored
    calls = 2000

    def hits():
        for _ in range(calls):
            expensive(["cat", "dog"], goodnesses=["good", "bad"])

    hit_s, _ = best_of(runs, hits)
    return {
        "sets/s": items / set_s,
        "gets/s": items / get_s,
        "update s": update_s,
        "memo hit µs": hit_s / calls * 1e6,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--root", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="hashstash-bench-", dir=args.root)
    try:
        import hashstash
        import hashstash_rs

        def original(name):
            return hashstash.HashStash(os.path.join(root, "original"), dbname=name, engine="lmdb", clear=True)

        def ours(name):
            return hashstash_rs.HashStash(os.path.join(root, "rs"), dbname=name, engine="lmdb", clear=True)

        results = {
            "hashstash 1.2.0 (Python)": measure(original, lambda s: s.stashed_result, args.items, args.runs),
            "hashstash_rs": measure(ours, lambda s: s.stashed_result, args.items, args.runs),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    (name_a, a), (name_b, b) = results.items()
    print(f"{args.items} items, LMDB, best of {args.runs}, root {args.root or 'tmp'}")
    print(f"{'':28}{'sets/s':>12}{'gets/s':>12}{'update s':>11}{'memo hit µs':>13}")
    for name, r in results.items():
        print(f"{name:28}{r['sets/s']:>12,.0f}{r['gets/s']:>12,.0f}{r['update s']:>11.4f}{r['memo hit µs']:>13.2f}")
    print(f"{'ratio':28}{b['sets/s'] / a['sets/s']:>11.1f}x{b['gets/s'] / a['gets/s']:>11.1f}x"
          f"{a['update s'] / b['update s']:>10.1f}x{a['memo hit µs'] / b['memo hit µs']:>12.1f}x")


if __name__ == "__main__":
    main()
