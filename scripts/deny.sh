#!/usr/bin/env bash
# Advisories, licences, bans and sources of every dependency, with cargo-deny (deny.toml).
#
#   bash scripts/deny.sh                 # install cargo-deny if missing, then check
#   bash scripts/deny.sh --refresh DIR   # replace the snapshot with a clone of advisory-db
#
# The RustSec advisory database lives on GitHub, which CI machines cannot reach, so the check
# runs offline against a snapshot kept in the repository (.ci/advisory-db.tar.gz, CC0-1.0;
# its commit and date are in .ci/advisory-db.txt). Refresh it from any machine that can
# reach GitHub: git clone https://github.com/rustsec/advisory-db DIR, then --refresh DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

snapshot=.ci/advisory-db.tar.gz
about=.ci/advisory-db.txt

if [ "${1:-}" = "--refresh" ]; then
  src=${2:?usage: scripts/deny.sh --refresh ADVISORY_DB_CLONE}
  git -C "$src" archive --format=tar HEAD | gzip -9n >"$snapshot"
  {
    echo "commit $(git -C "$src" rev-parse HEAD)"
    echo "date $(git -C "$src" show -s --format=%cI HEAD)"
    echo "source https://github.com/rustsec/advisory-db (CC0-1.0)"
  } >"$about"
  echo "snapshot replaced: $(head -2 "$about" | tr '\n' ' ')"
  exit 0
fi

version=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "$version"; then
  echo "installing cargo-deny $version (crates.io, about 3 minutes on two cores)"
  cargo install --quiet --locked cargo-deny --version "$version"
fi

# cargo-deny reads the database as a git checkout in a folder named after its URL, and takes
# the database's age from its commit date: give the snapshot the date it was taken.
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
checkout="$db/advisory-db-3157b0e258782691"
mkdir -p "$checkout"
tar -xzf "$snapshot" -C "$checkout"
date=$(sed -n 's/^date //p' "$about")
(
  cd "$checkout"
  git init -q
  git add -A
  GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
    git -c user.name=snapshot -c user.email=snapshot@localhost commit -qm snapshot
)
echo "advisory database: snapshot of $date ($(sed -n 's/^commit //p' "$about" | cut -c1-12))"
# `--offline` keeps cargo-deny off the network for the advisory database (the snapshot above),
# but it also runs `cargo metadata --offline` for every target platform, while the build steps
# download only what Linux needs. Fetch every platform's crates first (a no-op when the
# registry holds them), so that a fresh machine passes too.
cargo fetch --locked --quiet
HASHSTASH_ADVISORY_DB="$db" cargo deny --offline check
