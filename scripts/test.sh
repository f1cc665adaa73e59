#!/usr/bin/env bash
# The test command: installs dependencies, builds, runs every test with ctest. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build && ctest --output-on-failure --timeout 600 "$@"
