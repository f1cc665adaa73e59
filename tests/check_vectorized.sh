#!/usr/bin/env bash
# check_vectorized.sh COMPILE_COMMANDS_JSON SOURCE... — every loop under `#pragma omp [parallel for] simd`
# in the given sources must be reported by GCC as "loop vectorized" when the source is compiled exactly as
# the build compiles it (its command from compile_commands.json, with -fopt-info-vec-optimized into a
# fresh file and the object and dependency outputs sent to a temporary directory). On AVX2, GCC 12 once
# left every loop over exp_fast scalar (-ftrapping-math kept its clamp from being if-converted) and
# nothing but a profile showed it: this test fails instead.
set -euo pipefail
db=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
checked=0
for src in "$@"; do
  cmd=$(grep -F "\"command\":" "$db" | grep -F -- "-c $src\"" | grep -E "manylm_[a-z]+\.dir" | head -1 |
        sed -e 's/^ *"command": "//' -e 's/",\{0,1\} *$//' -e 's/\\"/"/g')
  if [[ -z $cmd ]]; then
    echo "no compile command for $src in $db"
    status=1
    continue
  fi
  # Drop the build's object and dependency outputs; compile into $tmp with a fresh report.
  cmd=$(sed -e 's/ -MD//' -e 's/ -MT [^ ]*//' -e 's/ -MF [^ ]*//' -e 's/ -o [^ ]*//' <<<"$cmd")
  report="$tmp/$(basename "$src").txt"
  dir=$(grep -B1 -F "\"command\":" "$db" | grep -F "\"directory\":" | head -1 | sed -e 's/^ *"directory": "//' -e 's/",$//')
  (cd "${dir:-.}" && eval "$cmd -o $tmp/obj.o -fopt-info-vec-optimized=$report")
  # Each simd loop as "pragma_line for_line". GCC names a vectorized loop by the pragma, the `for` or the
  # body's first statement, so a report anywhere from the pragma to three lines into the body counts.
  while read -r first line; do
    checked=$((checked + 1))
    found=0
    for ((l = first; l <= line + 3; ++l)); do
      if grep -Eq "(^|/)$(basename "$src"):$l:[0-9]+: optimized: loop vectorized" "$report"; then
        found=1
        break
      fi
    done
    if [[ $found == 0 ]]; then
      echo "$src:$line: loop under '#pragma omp simd' not vectorized: $(sed -n "${line}p" "$src" | sed 's/^ *//')"
      status=1
    fi
  done < <(awk '/#pragma omp/ && /simd/ && !/declare/ { p = NR; next } p && /^[[:space:]]*for[[:space:]]*\(/ { print p, NR; p = 0 }' "$src")
done
echo "$checked simd loops checked"
exit $status
