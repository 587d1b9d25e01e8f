#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing, then runs every check.
#
#   bash scripts/test.sh
#
# Installs Debian's libblosc-dev and pkg-config (for the `blosc` feature) when missing, then
# runs: rustfmt, clippy (all targets, all features, warnings denied), the test suite with
# every feature (one integration-test binary plus doctests), a build without default
# features, and the README walk-through on the default engine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need=()
for pkg in libblosc-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  step "installing Debian packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Stashes made by examples and doctests go to a scratch folder, not the user's cache.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export HASHSTASH_ROOT_DIR="$scratch"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features)"
cargo clippy --all-targets --all-features --quiet -- -D warnings

step "cargo build --no-default-features (the lean build)"
cargo build --no-default-features --quiet

step "the README walk-through on the default engine"
cargo run --quiet --example readme >/dev/null

step "cargo test --all-features"
cargo test --all-features
