#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo-fuzz (libFuzzer) on the stable toolchain:
# `--sanitizer none` is the only cargo-fuzz mode that needs no nightly `-Z` flag. The code under
# test forbids `unsafe`, so AddressSanitizer would only watch the dependencies; the targets
# instead assert properties (see fuzz/src/*.rs), and libFuzzer's coverage guidance works the same.
#
#   scripts/reliability/fuzz.sh build              # instrumented release build of every target
#   scripts/reliability/fuzz.sh smoke [SECS]       # every target for SECS seconds (default 3)
#   scripts/reliability/fuzz.sh run TARGET [SECS]  # one target, default 600 s, final stats
#   scripts/reliability/fuzz.sh list
#
# New inputs go to target/reliability/fuzz/corpus/TARGET (long runs; kept between runs) or
# target/reliability/fuzz/smoke/TARGET (smoke runs; emptied each time), never to the seeds in
# fuzz/corpus/TARGET. A failing input is written to
# target/reliability/fuzz/artifacts/TARGET/ and the script fails; copy it to
# fuzz/regressions/TARGET/ to make it a regression test (fuzz/tests/replay.rs).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
# cargo builds the fuzz crate into CARGO_TARGET_DIR when it is set, else fuzz/target.
bin_dir="${CARGO_TARGET_DIR:-$root/fuzz/target}/x86_64-unknown-linux-gnu/release"
work="$root/target/reliability/fuzz"
targets() { sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v altafinex; }

build() { cargo fuzz build --sanitizer none 2>&1 | grep -v '^\s*Compiling ' || true; }

run_one() { # target seconds scratch-corpus-dir extra-libfuzzer-args...
  local t="$1" secs="$2" scratch="$3"
  shift 3
  mkdir -p "$scratch" "$work/artifacts/$t"
  local log="$work/$t.log"
  local status=0
  "$bin_dir/$t" "$scratch" "fuzz/corpus/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 "$@" >"$log" 2>&1 || status=$?
  local execs cov
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $status) after ${execs:-?} runs; input and log:" >&2
    ls "$work/artifacts/$t/" >&2
    grep -m5 -E 'panicked|ERROR|SUMMARY' "$log" >&2 || tail -20 "$log" >&2
    return 1
  fi
  printf 'fuzz: %-16s %4ss  %9s runs  %s  corpus %s\n' "$t" "$secs" "${execs:-?}" "${cov:-cov: ?}" \
    "$(find "$scratch" "fuzz/corpus/$t" -type f | wc -l)"
}

case "${1:-smoke}" in
  list) targets ;;
  build) build ;;
  smoke)
    secs="${2:-${FUZZ_SMOKE_SECS:-3}}"
    build
    failed=0
    # From the seeds each time (a fresh scratch dir), so the smoke run's cost stays the same
    # however much the long runs have grown their corpora.
    for t in $(targets); do
      rm -rf "$work/smoke/$t"
      run_one "$t" "$secs" "$work/smoke/$t" || failed=1
    done
    exit "$failed"
    ;;
  run)
    t="${2:?target}"
    build
    run_one "$t" "${3:-600}" "$work/corpus/$t"
    ;;
  *) echo "usage: fuzz.sh build|smoke [SECS]|run TARGET [SECS]|list" >&2; exit 2 ;;
esac
