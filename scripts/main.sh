#!/usr/bin/env bash
# The main job: installs dependencies, builds, trains a small Elman model on PTB (recipes/ptb-elman-small.json,
# about 5 minutes on 2 cores), prints its test perplexity
# and a sample. Usage: scripts/main.sh [RECIPE.json] [extra train options]
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:-recipes/ptb-elman-small.json}
shift || true
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
run=runs/$(basename "$recipe" .json)-$(date +%Y%m%d-%H%M%S)
build/manylm train --config "$recipe" --out "$run" "$@"
echo "--- test perplexity"
build/manylm eval --model "$run"
echo "--- sample"
build/manylm sample --model "$run" --prompt "the company said" --length 60 --top-k 40 --seed 1
