#!/usr/bin/env bash
# The table benchmark: a 1,000,000-entry LMDB stash of nested animal records, one GROUP BY
# query and one `_key` lookup through hashstash (after a write, unchanged, and from a
# columnar snapshot), and the same GROUP BY through DuckDB (PyPI) over the stash exported as
# JSON lines and as parquet, in the same run. Prints query time, wall time and peak RSS.
#
#   bash scripts/bench-sql.sh [DIR] [N]      (DIR defaults to a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$(mktemp -d)}"
n="${2:-1000000}"
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb
cargo build --quiet --release --features best,sqlite,diskcache,redis,mongo,cli --example sql_benchmark --bin hashstash
target="${CARGO_TARGET_DIR:-target}/release"
bench="$target/examples/sql_benchmark"
cli="$target/hashstash"
peak() { /usr/bin/time -f "  wall %e s, peak RSS %M KB" "$@"; }

echo "== build $n entries"
"$bench" build "$dir" "$n"
sync
echo "== hashstash: GROUP BY, cold (written since the last query: the schema is sampled, checked by the scan)"
peak "$bench" query "$dir"
echo "== hashstash: GROUP BY, warm (nothing written since: the cached schema is reused)"
peak "$bench" query "$dir"
echo "== hashstash: _key lookup"
peak "$bench" query "$dir" "SELECT * FROM stash WHERE _key = 'Animal 777'"
echo "== hashstash: keep a columnar snapshot (hashstash snapshot), then the GROUP BY reads it"
peak "$cli" --root-dir "$dir" --dbname animals snapshot
peak "$bench" query "$dir"
peak "$bench" query "$dir"
echo "== export JSON lines and parquet"
peak "$cli" --root-dir "$dir" --dbname animals export --format json "$dir/animals.jsonl"
peak "$cli" --root-dir "$dir" --dbname animals export --format parquet "$dir/animals.parquet"
echo "== duckdb (2 threads): the same GROUP BY over the JSON lines, then over the parquet export"
duck() {
  peak python3 - "$1" "$2" <<'PY'
import sys, time, duckdb
path, kind = sys.argv[1], sys.argv[2]
con = duckdb.connect(config={"threads": 2})
if kind == "json":
    source = f"read_json_auto('{path}')"
    cols = "value.name, value.goodness, count(*), avg(value.etc.age)"
else:
    source = f"read_parquet('{path}')"
    cols = 'name, goodness, count(*), avg("etc.age")'
for run in ("first", "second"):
    started = time.perf_counter()
    rows = con.sql(f"SELECT {cols} FROM {source} GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    print(f"  duckdb over {kind}, {run} run: query took {time.perf_counter() - started:.3f} s, {len(rows)} groups")
PY
}
duck "$dir/animals.jsonl" json
duck "$dir/animals.parquet" parquet
