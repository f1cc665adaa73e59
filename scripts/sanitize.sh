#!/usr/bin/env bash
# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer: GCC build into build-asan/ (-O1 -g, every
# layer, the tests and the manylm binary the CLI tests run), then ctest there. Any ASan or UBSan report, or a leak
# at exit, fails the test it happens in (UBSan does not recover). Open MPI's and the BLAS libraries' own
# allocations that they never free are suppressed by scripts/sanitize.supp (LeakSanitizer), nothing else.
# Not in CI (the suite takes several times longer; docs/RESULTS.md has the figures).
# Usage: scripts/sanitize.sh [ctest args, e.g. -R Corpus]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Sanitize "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g $san" -DCMAKE_C_FLAGS_SANITIZE="-O1 -g $san" \
  -DCMAKE_EXE_LINKER_FLAGS_SANITIZE="$san" -DMANYLM_FUZZ=OFF >/dev/null
ninja -C build-asan
supp="$PWD/scripts/sanitize.supp"
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=0:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# Open MPI and PMIx keep their plugins loaded at exit, so a leak report names the plugin (suppressed), not an
# "<unknown module>" that no suppression can name.
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
# simd_loops_vectorized reads GCC's vectorizer report of the Release flags (-O3); -O1 vectorizes nothing.
cd build-asan && ctest --output-on-failure --timeout 1800 -E '^simd_loops_vectorized$' "$@"
