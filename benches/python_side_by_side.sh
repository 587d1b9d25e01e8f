#!/usr/bin/env bash
# The standard workload through the Python original (PyPI hashstash 1.2.0) and through this
# crate, one engine after the other in one run, and the ratio per engine and operation.
#
#   bash benches/python_side_by_side.sh [DIR] [ITEMS]
#
# DIR: where the stashes go (default /dev/shm, a tmpfs: the code is measured, not the disk).
# ITEMS: items per engine (default 10000). The Python original goes into a virtualenv of its
# own (with lmdb, lz4, sqlitedict), made the first time under ~/.cache/hashstash-tools.
# Both sides use the same serializer and compressor (hashstash, lz4: the original's defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-/dev/shm}"
items="${2:-10000}"
engines=lmdb,sqlite,pairtree,memory
venv="${HASHSTASH_PY_VENV:-$HOME/.cache/hashstash-tools/py-hashstash-1.2.0}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import hashstash, lmdb, lz4, sqlitedict' 2>/dev/null; then
  echo "installing the Python original into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "hashstash==1.2.0" lmdb lz4 sqlitedict
fi
cargo build --quiet --release --features filebased --bin hashstash
bin="${CARGO_TARGET_DIR:-target}/release/hashstash"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" profile --engines "$engines" --serializers hashstash --compressors lz4 \
  --items "$items" --dir "$dir" --json >"$out/rust.jsonl"
"$venv/bin/python" benches/python_workload.py --engines "$engines" --items "$items" \
  --dir "$dir" >"$out/python.jsonl"
python3 - "$out/python.jsonl" "$out/rust.jsonl" "$dir" "$items" <<'PY'
import json, sys
python = {r["engine"]: r for r in map(json.loads, open(sys.argv[1]))}
rust = {r["engine"]: r for r in map(json.loads, open(sys.argv[2]))}
print(f"{sys.argv[4]} items per engine, stashes in {sys.argv[3]}; operations per second\n")
print("| engine | operation | Python hashstash 1.2.0 | hashstash (Rust) | ratio |")
print("|---|---|---:|---:|---:|")
for engine, p in python.items():
    r = rust[engine]
    for op, field in [("get", "get_per_s"), ("set", "set_per_s"), ("update (batch)", "update_per_s")]:
        print(f"| {engine} | {op} | {p[field]:,.0f} | {r[field]:,.0f} | {r[field] / p[field]:.1f}x |")
PY
