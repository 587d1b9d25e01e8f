#!/usr/bin/env bash
# Memory of streamed results and of DataFrames (issue 19, points 4 and 5):
#
#   bash scripts/bench-stream.sh [DIR] [N_EXPORT] [N_FRAME]
#
# 1. An SQLite stash of N_EXPORT (default 5,000,000) nested animal records, written out by
#    `hashstash export --format parquet` and by `hashstash sql 'SELECT * FROM stash'
#    --format parquet --out` and `--format json`: wall time and peak RSS of each process.
# 2. An LMDB stash of N_FRAME (default 1,000,000) records turned into a polars DataFrame
#    (`df()`): peak RSS beside the frame's estimated_size and the LMDB file's size.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$(mktemp -d)}"
n_export="${2:-5000000}"
n_frame="${3:-1000000}"
cargo build --quiet --release --features best,sqlite,diskcache,redis,mongo,cli --example sql_benchmark --bin hashstash
target="${CARGO_TARGET_DIR:-target}/release"
bench="$target/examples/sql_benchmark"
cli=("$target/hashstash" --engine sqlite --root-dir "$dir/export" --dbname animals)
peak() { /usr/bin/time -f "  wall %e s, peak RSS %M KB" "$@"; }

echo "== build $n_export entries on sqlite"
HASHSTASH_ENGINE=sqlite "$bench" build "$dir/export" "$n_export"
echo "== export --format parquet (the schema inferred: the stash was just written)"
peak "${cli[@]}" export --format parquet "$dir/export.parquet"
echo "== sql 'SELECT * FROM stash' --format parquet --out"
peak "${cli[@]}" sql 'SELECT * FROM stash' --format parquet --out "$dir/sql.parquet"
echo "== sql 'SELECT * FROM stash' --format json --out"
peak "${cli[@]}" sql 'SELECT * FROM stash' --format json --out "$dir/sql.jsonl"
ls -l "$dir"/export.parquet "$dir"/sql.parquet "$dir"/sql.jsonl
rm -rf "$dir/export" "$dir"/*.parquet "$dir"/*.jsonl

echo "== build $n_frame entries on lmdb"
"$bench" build "$dir/frame" "$n_frame"
du -sh "$dir/frame"
echo "== df()"
peak "$bench" df "$dir/frame"
peak "$bench" df "$dir/frame"
