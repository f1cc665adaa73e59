# lib.sh — what every shell test starts with. `. tests/lib.sh NAME BINARY SOURCE_DIR` sets bin and src, data (the
# folder holding ptb/: the repository's data/ or ../shared/data; the test is skipped, status 77, where neither
# has it) and dir (a fresh temporary folder, /tmp/manylm-NAME-*, removed on exit), with `set -u`.
set -u
bin=$2
src=$3
data=$src/data
[ -f "$data/ptb/train.txt" ] || data=$src/../shared/data
if [ ! -f "$data/ptb/train.txt" ]; then
  echo "PTB not found: skipped"
  exit 77
fi
dir=$(mktemp -d "/tmp/manylm-$1-XXXXXX")
trap 'rm -rf "$dir"' EXIT
