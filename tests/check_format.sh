#!/usr/bin/env bash
# check_format.sh SOURCE_DIR — the C++ sources follow .clang-format (clang-format 14, Debian bookworm's: another
# major version formats some constructs differently, so the check is skipped there, exit 77).
set -euo pipefail
cd "$1"
command -v clang-format >/dev/null || { echo "clang-format not installed (scripts/setup.sh installs it)"; exit 1; }
major=$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
[ "$major" = 14 ] || { echo "skipped: clang-format $major; the format is clang-format 14's"; exit 77; }
files=$(ls src/*/*.h src/*/*.cc tests/*.cc tests/mpi/*.cc bench/peers/*.cc bench/experiments/*.cc fuzz/*.h fuzz/*.cc)
if ! clang-format --dry-run -Werror $files 2>/tmp/check_format.$$; then
  grep -E "error:" /tmp/check_format.$$ | head -20
  echo "check_format: $(grep -c 'error:' /tmp/check_format.$$) lines differ from .clang-format; run: clang-format -i <files>"
  rm -f /tmp/check_format.$$
  exit 1
fi
rm -f /tmp/check_format.$$
echo "check_format: $(echo $files | wc -w) files follow .clang-format"
