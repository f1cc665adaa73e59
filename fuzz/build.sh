#!/usr/bin/env bash
# build.sh OUT CLANGXX LINK_FILE [LAUNCHER] — configures (once) and builds fuzz/'s clang project in OUT/clang, the
# programs in OUT. Called by the Release build's target `fuzz` (fuzz/CMakeLists.txt); not meant to be run by hand.
set -euo pipefail
out=$1 cxx=$2 link=$3 launcher=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/clang"
if [ ! -f "$out/clang/build.ninja" ]; then
  args=(-S "$here" -B "$out/clang" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DMANYLM_LINK_FILE="$link" -DMANYLM_FUZZ_OUT="$out")
  [ -n "$launcher" ] && args+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
  cmake "${args[@]}" >/dev/null
fi
cmake --build "$out/clang"
