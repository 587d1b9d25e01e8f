#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing, then runs every check.
#
#   bash scripts/test.sh
#
# Installs Debian's libblosc-dev and pkg-config (for the `blosc` feature), fonts-dejavu-core
# (text in the profile figures), PyPI's pyarrow (an independent reader of our parquet files)
# and duckdb (answers the same queries over the same data) when missing,
# starts a Redis and a MongoDB wire-compatible server on 127.0.0.1 (scripts/services.sh,
# which installs them the first time), then runs: rustfmt, clippy (all targets, all
# features, warnings denied), a build without default features, the README walk-through on
# the default engine, and the test suite with every feature (one integration-test binary
# plus doctests). Server tests are required to run: a missing server fails them. Also checks
# the dependencies' advisories and licences with cargo-deny (scripts/deny.sh, which installs
# it the first time), once more from an empty CARGO_HOME as a fresh machine has it, and
# replays the fuzz corpus. Then builds the Python package (python/) and runs its pytest suite
# in a virtualenv it makes (PyPI: pytest, pyarrow, polars, pandas, numpy, and the Python
# original hashstash 1.2.0 for the side-by-side benchmark). What it cannot install (cargo itself, python3 with pip) it names
# and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need=()
for pkg in libblosc-dev pkg-config openssl fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  step "installing Debian packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# What the steps below run and a fresh machine may lack: say so plainly, or install it.
command -v cargo >/dev/null || { echo "cargo is not on PATH: install Rust (rustup) first" >&2; exit 1; }
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    step "installing the toolchain's $component (rustup component add)"
    rustup component add "$component"
  fi
done
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "python3 with pip is needed (pyarrow, the independent parquet reader): install python3-pip" >&2
  exit 1
fi

# pyarrow reads our parquet files back in a test: an independent reader. DuckDB answers the
# same queries over the same data in another test (tests/duckdb.rs).
for module in pyarrow duckdb; do
  if ! python3 -c "import $module" 2>/dev/null; then
    step "installing $module (PyPI), an independent reader of our data"
    python3 -m pip install -q "$module"
  fi
done

# Stashes made by examples and doctests go to a scratch folder, not the user's cache.
scratch=$(mktemp -d)
export HASHSTASH_ROOT_DIR="$scratch"
export HASHSTASH_SERVICES_DIR="$scratch/services"
# Cleaning up never changes the outcome: the servers are stopped and the scratch folder
# removed, and the script exits with the status the checks gave.
trap 'status=$?; bash scripts/services.sh stop || true; rm -rf "$scratch" || true; exit $status' EXIT

step "starting Redis, MongoDB and an S3-compatible server (scripts/services.sh)"
services=$(bash scripts/services.sh start)
eval "$services"
printf '%s\n' "$services" | grep '^export [A-Z0-9_]*=' | grep -v SECRET | sed 's/^export /    /'
export HASHSTASH_REQUIRE_SERVERS=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets; all features, then the default ones)"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
# The Python crate asks for engines and SQL, which would lint the crate with more than its defaults.
cargo clippy --workspace --exclude hashstash-python --all-targets --quiet -- -D warnings

step "cargo deny: advisories, licences, bans, sources (scripts/deny.sh)"
bash scripts/deny.sh

# The same with an empty cargo home, as on a fresh machine (tools still found on PATH):
# a step that leaned on crates an earlier machine left in the registry fails here.
step "cargo deny from an empty CARGO_HOME (what a fresh machine has)"
fresh_home=$(mktemp -d)
CARGO_HOME="$fresh_home" bash scripts/deny.sh
rm -rf "$fresh_home"

step "cargo build --no-default-features (the lean build)"
cargo build --no-default-features --quiet

# With every feature (a superset of the README's `best`, so the analytics part runs), which
# reuses the test build's dependencies instead of building DataFusion once more.
step "the README walk-through on the default engine (SQL, DataFrames, parquet included)"
cargo run --quiet --all-features --example readme >/dev/null

step "cargo test --all-features (and the macros' compile-error cases)"
cargo test --all-features
cargo test -p hashstash-macros

step "the benches, once each (criterion's test mode: they compile and run)"
HASHSTASH_BENCH_DIR="$scratch" cargo test --all-features --benches

step "every example, run (all features: each is one program per feature)"
for example in examples/*.rs; do
    name=$(basename "$example" .rs)
    [ "$name" = sql_benchmark ] && continue # a benchmark: scripts/bench-sql.sh runs it
    echo "--- example $name"
    args=()
    [ "$name" = profile ] && args=("$scratch/profile-figures") # where its figures go
    [ "$name" = lifecycle_benchmark ] && args=(2000) # entries: a quick run
    cargo run --quiet --all-features --example "$name" -- "${args[@]}"
done

# The Python package: its extension module built with the crate's own features (sharing
# every compiled dependency with the tests above), installed into a virtualenv with what
# its tests use, then pytest, with the Rust CLI for the cross-language tests.
step "the Python package (python/): build, install into a virtualenv, pytest"
cargo build --quiet --all-features -p hashstash -p hashstash-python
venv="${HASHSTASH_VENV:-$HOME/.cache/hashstash-ci/venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    pytest pyarrow polars pandas numpy 'hashstash==1.2.0' lmdb lz4 sqlitedict
bash scripts/python-install.sh "$venv" debug
HASHSTASH_CLI="${CARGO_TARGET_DIR:-target}/debug/hashstash" HASHSTASH_REQUIRE_CLI=1 \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests
# The benchmark beside the Python original, once, small (a debug build: it must run, its
# figures mean nothing here; python/README.md has release figures).
"$venv/bin/python" python/bench/vs_original.py --items 200 --runs 1 --root "$scratch"

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --all-features --no-deps --quiet
