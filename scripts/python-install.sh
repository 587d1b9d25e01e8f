#!/usr/bin/env bash
# Installs the Python package `hashstash_rs` into a virtualenv from the extension module
# cargo has built (no second build: the test command builds it in the same cargo run as the
# crate's tests, sharing every compiled dependency).
#
#   bash scripts/python-install.sh VENV [debug|release]
#
# Wheels for users come from maturin instead (`pip install ./python`, see python/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: python-install.sh VENV [debug|release]}
profile=${2:-debug}
target=${CARGO_TARGET_DIR:-target}
module="$target/$profile/lib_native.so"
[ -f "$module" ] || { echo "no $module: build it first (cargo build -p hashstash-python)" >&2; exit 1; }
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
suffix=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
rm -rf "$site/hashstash_rs"
mkdir -p "$site/hashstash_rs"
cp python/hashstash_rs/*.py "$site/hashstash_rs/"
cp "$module" "$site/hashstash_rs/_native$suffix"
echo "hashstash_rs ($profile build) installed in $venv"
