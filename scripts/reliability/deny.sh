#!/usr/bin/env bash
# Dependency audit: cargo deny (advisories, bans, licenses, sources) against deny.toml, with
# the RustSec advisory database read OFFLINE from the shared snapshot. Never fetches it.
#
#   scripts/reliability/deny.sh            # the workspace (Cargo.lock) and the fuzz crate
#   ADVISORY_DB=/path/to/advisory-db scripts/reliability/deny.sh
#
# cargo-deny wants a git checkout (it dates the database by its HEAD commit / FETCH_HEAD);
# the snapshot is plain read-only files, so it is laid out once as a one-commit repository
# dated with the snapshot's own date, under target/advisory-dbs (see deny.toml).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"

src="${ADVISORY_DB:-}"
if [ -z "$src" ]; then
  for candidate in "$root/../shared/advisory-db" "/work/shared/advisory-db"; do
    if [ -f "$candidate/SNAPSHOT" ]; then src="$candidate"; break; fi
  done
fi
if [ -z "$src" ] || [ ! -d "$src/crates" ]; then
  echo "deny.sh: no advisory database snapshot found (set ADVISORY_DB)" >&2
  exit 1
fi

# Directory name cargo-deny derives from db-urls in deny.toml (name + xxhash of the URL).
db="$root/target/advisory-dbs/advisory-db-3157b0e258782691"
snapshot="$(cat "$src/SNAPSHOT")"
if [ ! -d "$db/.git" ] || [ "$(cat "$db/.snapshot" 2>/dev/null)" != "$snapshot" ]; then
  # The date the snapshot's commit carries: "... at commit <sha> (YYYY-MM-DD), ...".
  date="$(grep -o '([0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\})' "$src/SNAPSHOT" | head -1 | tr -d '()')"
  [ -n "$date" ] || { echo "deny.sh: no date in $src/SNAPSHOT" >&2; exit 1; }
  rm -rf "$db"
  mkdir -p "$db"
  cp -r "$src/." "$db/"
  chmod -R u+w "$db"
  (
    cd "$db"
    git init -q -b main
    git add -A
    GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z" \
      git -c user.name=snapshot -c user.email=snapshot@localhost commit -q -m "$snapshot"
    touch -d "${date}T00:00:00Z" .git/HEAD .git/FETCH_HEAD
  )
  printf '%s' "$snapshot" >"$db/.snapshot"
fi

# cargo deny --offline also runs `cargo metadata` offline: every crate of every platform in
# Cargo.lock must be in the local cache first (an ordinary, locked download from crates.io).
cargo fetch --locked --quiet
cargo deny --offline --log-level error check --show-stats
if [ -f fuzz/Cargo.toml ]; then # the fuzz crate is a workspace of its own, with its own lock file
  cargo fetch --locked --quiet --manifest-path fuzz/Cargo.toml
  cargo deny --offline --log-level error --manifest-path fuzz/Cargo.toml --config deny.toml check --show-stats
fi
