#!/usr/bin/env bash
# run.sh FUZZ_BUILD_DIR TARGET [libFuzzer options] — runs fuzz_TARGET on its committed seeds and regressions, then
# fuzzes with the options given (e.g. -max_total_time=3, or -runs=1000000 for a long run). New inputs go to
# FUZZ_BUILD_DIR/corpus/TARGET; a crash, sanitizer report, leak or broken invariant is written to
# FUZZ_BUILD_DIR/crashes/ and fails the run (exit status non-zero). Prints libFuzzer's final statistics.
set -euo pipefail
dir=$1 t=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/corpus/$t" "$dir/crashes"
inputs=("$dir/corpus/$t" "$here/seeds/$t")
[ -d "$here/regressions/$t" ] && inputs+=("$here/regressions/$t")
export ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" UBSAN_OPTIONS="print_stacktrace=1:${UBSAN_OPTIONS:-}"
exec "$dir/fuzz_$t" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/crashes/$t-" \
  "$@" "${inputs[@]}"
