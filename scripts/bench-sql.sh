#!/usr/bin/env bash
# The table benchmark (issue 4): a 1,000,000-entry LMDB stash of nested animal records,
# one GROUP BY query and one `_key` lookup through hashstash, and the same GROUP BY through
# DuckDB (PyPI) over the stash exported as JSON lines. Prints wall time and peak RSS of each.
#
#   bash scripts/bench-sql.sh [DIR] [N]      (DIR defaults to a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$(mktemp -d)}"
n="${2:-1000000}"
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb
cargo build --quiet --release --features lmdb,sql --example sql_benchmark --bin hashstash
bench=target/release/examples/sql_benchmark
cli=target/release/hashstash
peak() { /usr/bin/time -f "  wall %e s, peak RSS %M KB" "$@"; }

echo "== build $n entries"
"$bench" build "$dir" "$n"
sync
stash_dir=$(find "$dir/animals" -mindepth 1 -maxdepth 1 -type d | head -1)
echo "== hashstash: GROUP BY, cold (written since the last query: the schema is sampled, checked by the scan)"
peak "$bench" query "$dir"
echo "== hashstash: GROUP BY, warm (nothing written since: the cached schema is reused)"
peak "$bench" query "$dir"
echo "== hashstash: _key lookup"
peak "$bench" query "$dir" "SELECT * FROM stash WHERE _key = 'Animal 777'"
echo "== export JSON lines"
peak "$cli" --path "$stash_dir" export --format json "$dir/animals.jsonl"
echo "== duckdb (2 threads) over the JSON lines"
peak python3 - "$dir/animals.jsonl" <<'PY'
import sys, time, duckdb
con = duckdb.connect(config={"threads": 2})
started = time.perf_counter()
rows = con.sql(f"""
    SELECT value.name, value.goodness, count(*), avg(value.etc.age)
    FROM read_json_auto('{sys.argv[1]}') GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
print(f"  duckdb query took {time.perf_counter() - started:.3f} s, {len(rows)} groups")
PY
