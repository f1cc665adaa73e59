#!/usr/bin/env bash
# Writes fuzz/seeds/<target>/ from the real files of a tiny run: an LSTM 1x8 with a 40-word vocabulary, Adam, batch 4,
# weights averaged from epoch 1 and the best epoch kept, on the first 3,000 bytes of PTB's train.txt (1,000 of
# valid and test). The checkpoint target's model (fuzz/checkpoint_fuzz.cc) is this run's. Run it again when a
# file format changes. Usage: fuzz/make_seeds.sh BUILD_DIR (with BUILD_DIR/manylm) [DATA_DIR (default ../shared/data)]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
manylm=$(cd "$1" && pwd)/manylm
data=${2:-$here/../../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 3000 "$data/ptb/train.txt" >"$tmp/train.txt"
head -c 1000 "$data/ptb/valid.txt" >"$tmp/valid.txt"
head -c 1000 "$data/ptb/test.txt" >"$tmp/test.txt"
"$manylm" train --train "$tmp/train.txt" --valid "$tmp/valid.txt" --test "$tmp/test.txt" --cell lstm --layers 1 \
  --hidden 8 --embed 8 --vocab-size 40 --batch 4 --bptt 5 --optimizer adam --lr 0.01 --epochs 2 --average-from 1 \
  --keep-best --threads 1 --cache-dir "$tmp/cache" --out "$tmp/run" >/dev/null 2>&1
run=$tmp/run
sep=$'\n--manylm-fuzz-next-file--\n'
s=$here/seeds
rm -rf "$s"
mkdir -p "$s"/{safetensors,checkpoint,vocab_json,config_json,corpus,token_cache}
cp "$run/model.safetensors" "$run/state.safetensors" "$run/best.safetensors" "$run/average.safetensors" "$s/safetensors/"
{ cat "$run/model.safetensors"; printf '%s' "$sep"; cat "$run/state.safetensors"; } >"$s/checkpoint/pair"
# An interrupted save: the state's next file (completed on recovery), and the model's (discarded).
{ cat "$run/model.safetensors"; printf '%s' "$sep"; printf '%s' "$sep"; cat "$run/state.safetensors"; } \
  >"$s/checkpoint/state-next"
{ cat "$run/model.safetensors"; printf '%s' "$sep"; cat "$run/state.safetensors"; printf '%s' "$sep$sep";
  cat "$run/model.safetensors"; } >"$s/checkpoint/model-next"
cp "$run/vocab.json" "$s/vocab_json/"
cp "$run/config.json" "$s/config_json/"
cp "$here/../recipes/ptb-medium-asgd.json" "$here/../recipes/ptb-elman.json" "$s/config_json/"
head -c 600 "$tmp/train.txt" >"$s/corpus/ptb.txt"
printf 'caf\xc3\xa9 \xe2\x82\xac\r\nna\xc3\xafve\rline\n' >"$s/corpus/utf8-crlf-cr.txt"
for f in "$tmp"/cache/*.ids; do [ "$(stat -c %s "$f")" -lt 1000 ] && cp "$f" "$s/token_cache/"; done
du -sh "$s"; find "$s" -type f | wc -l
