#!/usr/bin/env bash
# The table benchmark: a 1,000,000-entry LMDB stash of nested animal records, one GROUP BY
# query and one `_key` lookup through hashstash (after a write, unchanged, and from a
# columnar snapshot), and the same GROUP BY through DuckDB (PyPI) over the stash exported as
# JSON lines and as parquet, in the same run. Prints query time, wall time and peak RSS.
# With the S3 test server's variables set (eval "$(bash scripts/services.sh start)"), also the
# GROUP BY over the parquet export kept in object storage, read in place by `hashstash sql
# --table snap=s3://...`, beside one GET of the whole object (boto3) as the floor.
#
#   bash scripts/bench-sql.sh [DIR] [N]      (DIR defaults to a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$(mktemp -d)}"
n="${2:-1000000}"
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb
cargo build --quiet --release --features best,sqlite,diskcache,redis,mongo,objectstore,cli --example sql_benchmark --bin hashstash
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

if [ -n "${AWS_ENDPOINT_URL:-}" ] && [ -n "${HASHSTASH_OBJECTSTORE_URL:-}" ]; then
  url="${HASHSTASH_OBJECTSTORE_URL%/}/bench-sql/animals.parquet"
  q='SELECT name, goodness, count(*), avg("etc.age") FROM snap GROUP BY 1, 2 ORDER BY 1, 2'
  echo "== object storage: export the parquet snapshot to $url"
  peak "$cli" --root-dir "$dir" --dbname animals export "$url"
  echo "== hashstash sql --table snap=$url: the GROUP BY read in place (first run, second run)"
  peak "$cli" --root-dir "$dir" --dbname animals sql --table "snap=$url" "$q" > /dev/null
  peak "$cli" --root-dir "$dir" --dbname animals sql --table "snap=$url" "$q" > /dev/null
  echo "== the same command over the local parquet export"
  peak "$cli" --root-dir "$dir" --dbname animals sql --table "snap=$dir/animals.parquet" "$q" > /dev/null
  echo "== the floor: one GET of the whole object (boto3)"
  python3 - "$url" <<'PY'
import os, sys, time, boto3
bucket, key = sys.argv[1][len("s3://"):].split("/", 1)
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for run in ("first", "second"):
    started = time.perf_counter()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    print(f"  GET of {len(body)} bytes, {run} run: {time.perf_counter() - started:.3f} s")
PY
fi
