#!/usr/bin/env bash
# The lookup benchmark (issue 19, point 2): on a 1,000,000-entry stash of nested animal
# records per engine, the whole `hashstash sql` process for a `_key =` lookup and for a
# `LIMIT 10`, on an unchanged stash (its schema in the engine's catalog) and right after a
# write (the schema sampled). Prints the median and the slowest of RUNS runs, in ms.
#
#   bash scripts/bench-lookup.sh [DIR] [N] [ENGINES]
#
# ENGINES defaults to "lmdb sqlite diskcache redis mongo"; the server engines use
# HASHSTASH_REDIS_URL and HASHSTASH_MONGO_URL (scripts/services.sh start prints them).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$(mktemp -d)}"
n="${2:-1000000}"
engines="${3:-lmdb sqlite diskcache redis mongo}"
runs="${RUNS:-11}"
features=best,sqlite,diskcache,redis,mongo,cli # one feature set for every bench script: one build
cargo build --quiet --release --features "$features" --example sql_benchmark --bin hashstash
target="${CARGO_TARGET_DIR:-target}/release"

# The median and the slowest wall time of `runs` runs of a command, in ms; with BEFORE set,
# that command runs (untimed) before each run.
timed() {
    local times=() i start end
    for ((i = 0; i < runs; i++)); do
        if [[ -n "${BEFORE:-}" ]]; then eval "$BEFORE" > /dev/null; fi
        start=$(date +%s%N)
        "$@" > /dev/null
        end=$(date +%s%N)
        times+=($(((end - start) / 1000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{t[NR] = $1}
        END {printf "median %.1f ms, slowest %.1f ms\n", t[int((NR + 1) / 2)] / 1000, t[NR] / 1000}'
}

# One write to the stash of the engine at hand (so that the next query is the first after it).
write_one() {
    "${cli[@]}" set '"Animal 0"' '{"name": "cat", "goodness": "good", "etc": {"age": 3, "goes_to": {"heaven": true}}}'
}

for engine in $engines; do
    echo "== $engine: build $n entries"
    HASHSTASH_ENGINE=$engine "$target/examples/sql_benchmark" build "$dir" "$n"
    cli=("$target/hashstash" --engine "$engine" --root-dir "$dir" --dbname animals)
    # The first query after the writes samples the schema, checks it in its pass over every
    # entry and records it in the engine's catalog.
    /usr/bin/time -f "  first query after the writes: wall %e s, peak RSS %M KB" \
        "${cli[@]}" sql 'SELECT count(*) FROM stash' > /dev/null
    echo -n "  _key = lookup, unchanged stash: "
    timed "${cli[@]}" sql "SELECT * FROM stash WHERE _key = 'Animal 777'"
    echo -n "  LIMIT 10, unchanged stash:      "
    timed "${cli[@]}" sql 'SELECT * FROM stash LIMIT 10'
    # Each run right after a write (the write itself not timed).
    echo -n "  _key = lookup, after a write:   "
    BEFORE=write_one timed "${cli[@]}" sql "SELECT * FROM stash WHERE _key = 'Animal 777'"
    echo -n "  LIMIT 10, after a write:        "
    BEFORE=write_one timed "${cli[@]}" sql 'SELECT * FROM stash LIMIT 10'
    "${cli[@]}" clear > /dev/null
done
