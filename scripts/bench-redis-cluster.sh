#!/usr/bin/env bash
# One stash on a 3-node Redis Cluster (spread over its 64 shards) beside the same stash on
# one Redis server: import N entries, then len, a full scan (keys) and a SQL aggregate, with
# wall time and peak RSS, and how the stash's keys fall on the nodes. Servers of its own on
# free ports of 127.0.0.1, stopped at the end.
#
#   bash scripts/bench-redis-cluster.sh [N]      (N defaults to 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-200000}"
server="${HASHSTASH_REDIS_SERVER:-$(command -v redis-server)}"
redis_cli="$(dirname "$server")/redis-cli"
cargo build --quiet --release --features best,sqlite,diskcache,redis,mongo,objectstore,cli --bin hashstash
cli="${CARGO_TARGET_DIR:-target}/release/hashstash"
dir="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() { # port, extra args...
  local port="$1"; shift
  "$server" --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" "$@" > /dev/null &
  pids+=("$!")
  until "$redis_cli" -p "$port" PING > /dev/null 2>&1; do sleep 0.05; done
}
peak() { /usr/bin/time -f "  wall %e s, peak RSS %M KB" "$@"; }

single=$(free_port)
start "$single"
nodes=()
while [ "${#nodes[@]}" -lt 3 ]; do
  p=$(free_port)
  # The cluster bus listens on port + 10000.
  if [ "$p" -lt 55000 ] && ! (echo > "/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
    start "$p" --cluster-enabled yes --cluster-config-file "nodes-$p.conf"
    nodes+=("$p")
  fi
done
"$redis_cli" --cluster create "${nodes[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes > /dev/null
until "$redis_cli" -p "${nodes[0]}" CLUSTER INFO | grep -q 'cluster_state:ok'; do sleep 0.1; done

python3 - "$n" > "$dir/entries.jsonl" <<'PY'
import json, sys
kinds = ["cat", "dog", "eel", "owl"]
for i in range(int(sys.argv[1])):
    print(json.dumps({"key": f"Animal {i}", "value": {"kind": kinds[i % 4], "n": i}}))
PY

for target in "one server|redis://127.0.0.1:$single/0" "3-node cluster|redis://127.0.0.1:${nodes[0]}/?cluster=true"; do
  name="${target%%|*}"; url="${target#*|}"
  stash=(--engine redis --url "$url" --root-dir bench --dbname animals)
  echo "== $name: import $n entries"
  peak "$cli" "${stash[@]}" import "$dir/entries.jsonl" > /dev/null
  echo "== $name: len"
  peak "$cli" "${stash[@]}" len
  echo "== $name: keys (a full scan)"
  peak sh -c "'$cli' $(printf "'%s' " "${stash[@]}") keys | wc -l"
  echo "== $name: SELECT kind, count(*), avg(n) FROM stash GROUP BY kind (first: schema inferred)"
  for run in first second; do
    peak "$cli" "${stash[@]}" sql "SELECT kind, count(*), avg(n) FROM stash GROUP BY kind ORDER BY kind" > /dev/null
  done
done
echo "== keys on each cluster node (DBSIZE)"
for p in "${nodes[@]}"; do echo "  node $p: $("$redis_cli" -p "$p" DBSIZE)"; done
