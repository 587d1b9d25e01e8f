#!/usr/bin/env bash
# Real servers for the tests: Redis, a MongoDB wire-compatible server and an S3-compatible
# object store, on 127.0.0.1.
#
#   eval "$(bash scripts/services.sh start)"   # installs what is missing, starts both,
#                                              # prints the variables to export
#   bash scripts/services.sh stop              # stops what `start` started
#
# Installs Debian's redis-server when missing, and the MongoDB wire-compatible server
# `secantusd-rs` (crates.io `secantus-mdb`), built once into $HASHSTASH_TOOLS_DIR (default
# ~/.cache/hashstash-tools) and reused afterwards. Each server listens on a free port of
# 127.0.0.1 and keeps its data and logs in $HASHSTASH_SERVICES_DIR (default a folder under
# the temp folder). The S3-compatible server is moto (PyPI `moto[server]`, installed with pip
# when missing; served by scripts/moto_serial.py, one request at a time), with a bucket
# `hashstash`. moto keeps its objects in memory, so the tests that kill an S3 server and
# restart it run their own `s3s-fs` (crates.io, built once into the same tools folder),
# which keeps them in files. `start` prints:
#
#   HASHSTASH_REDIS_URL, HASHSTASH_MONGO_URL,         where the tests find the servers
#   HASHSTASH_OBJECTSTORE_URL (+ the AWS_* variables that point the S3 client at it)
#   HASHSTASH_REDIS_SERVER, HASHSTASH_MONGO_SERVER,   the server binaries, for fault tests
#   HASHSTASH_S3_SERVER, HASHSTASH_S3FS_SERVER        that start, kill and restart their own
set -euo pipefail

tools="${HASHSTASH_TOOLS_DIR:-$HOME/.cache/hashstash-tools}"
state="${HASHSTASH_SERVICES_DIR:-${TMPDIR:-/tmp}/hashstash-services-$(id -u)}"
secantus_version="0.5.3-beta.196"

log() { printf '%s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing Debian packages: $*"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >&2
}

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  # Without python: a random high port that nothing answers on.
  local port
  while :; do
    port=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

redis_bin() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  command -v redis-server
}

mongo_bin() {
  local bin="$tools/bin/secantusd-rs"
  if [ ! -x "$bin" ]; then
    # It builds WiredTiger (C, with cmake) and links C++.
    command -v cmake >/dev/null 2>&1 || apt_install cmake
    command -v c++ >/dev/null 2>&1 || apt_install g++
    log "building secantusd-rs $secantus_version into $tools (once; a few minutes)"
    cargo install --quiet --locked secantus-mdb --version "$secantus_version" \
      --ignore-rust-version --root "$tools" >&2
  fi
  printf '%s\n' "$bin"
}

start_redis() {
  local bin port
  bin=$(redis_bin)
  port=$(free_port)
  mkdir -p "$state/redis"
  "$bin" --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
    --dir "$state/redis" --pidfile "$state/redis.pid" --logfile "$state/redis.log" >&2
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf 'export HASHSTASH_REDIS_URL=redis://127.0.0.1:%s/0\n' "$port"
      printf 'export HASHSTASH_REDIS_SERVER=%s\n' "$bin"
      return 0
    fi
    sleep 0.1
  done
  log "redis did not start; its log:"; cat "$state/redis.log" >&2 || true
  return 1
}

start_mongo() {
  local bin port
  bin=$(mongo_bin)
  mkdir -p "$state/mongo"
  : >"$state/mongo.log"
  "$bin" --host 127.0.0.1 --port 0 --storage-path "$state/mongo" --cache-size 256M \
    --log-file-max 16MB >>"$state/mongo.log" 2>&1 &
  echo $! >"$state/mongo.pid"
  for _ in $(seq 300); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$state/mongo.log" | head -n1 | sed 's/.*://' || true)
    if [ -n "$port" ]; then
      printf 'export HASHSTASH_MONGO_URL=mongodb://127.0.0.1:%s/hashstash\n' "$port"
      printf 'export HASHSTASH_MONGO_SERVER=%s\n' "$bin"
      return 0
    fi
    sleep 0.1
  done
  log "secantusd-rs did not start; its log:"; cat "$state/mongo.log" >&2 || true
  return 1
}

moto_version="5.2.1"
s3s_fs_version="0.14.1"

# s3s-fs: an S3 server over a folder, for the tests that kill and restart one.
s3fs_bin() {
  local bin="$tools/bin/s3s-fs"
  if [ ! -x "$bin" ]; then
    log "building s3s-fs $s3s_fs_version into $tools (once; two minutes)"
    cargo install --quiet --locked s3s-fs --version "$s3s_fs_version" --features binary \
      --root "$tools" >&2
  fi
  printf 'export HASHSTASH_S3FS_SERVER=%s\n' "$bin"
}

# moto runs through scripts/moto_serial.py (found wherever pip put moto, with or without
# its script on PATH), which answers one request at a time: moto's own server decides a
# create-only put without a lock, where S3 decides it atomically (the file says more).
s3_ready() {
  python3 -c "import moto, moto.server, flask; assert moto.__version__ == '$moto_version'" 2>/dev/null
}

s3_bin() {
  if ! s3_ready; then
    log "installing moto[server] $moto_version (pip)"
    python3 -m pip install --quiet "moto[server]==$moto_version" >&2
  fi
  printf '%s\n' "python3 $(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/moto_serial.py"
}

start_s3() {
  local bin port
  bin=$(s3_bin)
  port=$(free_port)
  # Word splitting on purpose: "$bin" is a command with its arguments.
  # shellcheck disable=SC2086
  $bin -H 127.0.0.1 -p "$port" >"$state/s3.log" 2>&1 &
  echo $! >"$state/s3.pid"
  for _ in $(seq 300); do
    # The bucket the tests use (moto accepts an unsigned create).
    if python3 -c 'import sys, urllib.request as r; r.urlopen(r.Request(sys.argv[1], method="PUT"), timeout=2)' \
      "http://127.0.0.1:$port/hashstash" >/dev/null 2>&1; then
      printf 'export HASHSTASH_OBJECTSTORE_URL=s3://hashstash/tests\n'
      printf 'export AWS_ENDPOINT_URL=http://127.0.0.1:%s\n' "$port"
      printf 'export AWS_ALLOW_HTTP=true\n'
      printf 'export AWS_ACCESS_KEY_ID=hashstash-test\n'
      printf 'export AWS_SECRET_ACCESS_KEY=hashstash-test\n'
      printf 'export AWS_REGION=us-east-1\n'
      printf 'export HASHSTASH_S3_SERVER="%s"\n' "$bin"
      return 0
    fi
    sleep 0.1
  done
  log "moto_server did not start; its log:"; cat "$state/s3.log" >&2 || true
  return 1
}

stop_all() {
  local pid
  for pidfile in "$state/redis.pid" "$state/mongo.pid" "$state/s3.pid"; do
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      # Wait for it to exit (it may still be writing its files), then insist.
      for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  rm -rf "$state" 2>/dev/null || true
}

case "${1:-}" in
  start)
    stop_all
    mkdir -p "$state"
    # A server that started is stopped again if the other one cannot start.
    if ! { start_redis && start_mongo && start_s3 && s3fs_bin; }; then
      stop_all
      exit 1
    fi
    ;;
  stop) stop_all ;;
  *) log "usage: $0 start|stop"; exit 2 ;;
esac
