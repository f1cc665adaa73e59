#!/usr/bin/env bash
# Writes fuzz/seeds/<target>/ from the real files of a tiny run: an LSTM 1x8 with a 40-word vocabulary, Adam, batch 4,
# weights averaged from epoch 1 and the best epoch kept, on the first 3,000 bytes of PTB's train.txt (1,000 of
# valid and test). The checkpoint target's model (fuzz/checkpoint_fuzz.cc) and corpus_record's fingerprint are this
# run's; shard_cache's record is of a second run on that harness's text. Run it again when a file format changes. Usage: fuzz/make_seeds.sh BUILD_DIR (with BUILD_DIR/manylm) [DATA_DIR (default ../shared/data)]
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
mkdir -p "$s"/{safetensors,checkpoint,vocab_json,config_json,corpus,token_cache,vocab_file,shard_cache,corpus_record,nbest}
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
# vocab_file: "UNK EOS" names, then the file, in each format (the examples of tests/vocab_file_test.cc).
printf '<unk> <eos>%sthe\n<unk>\r\nzebra\n\n<eos>\na\n' "$sep" >"$s/vocab_file/lines"
printf '<UNK> </s>%s<eps> 0\n!SIL 1\n<UNK> 2\nhello 3\nworld 5\n#0 6\n<s> 7\n</s> 8\n#12 9\n#x 10\n' "$sep" \
  >"$s/vocab_file/kaldi"
printf '<unk> <eos>%s<unk> 0\n<eos> 1\ncaf\xc3\xa9 2\n' "$sep" >"$s/vocab_file/kaldi-no-eps"
printf '<UNK> </S>%s\xef\xbb\xbf<S> 0\n</S> 30\n<UNK> 0\nthe 41\n, 39\n' "$sep" >"$s/vocab_file/lm1b"
# shard_cache: the record of shard_cache_fuzz.cc's text and a vocabulary entry, from a run on that text.
printf "the company said it would n't <unk> its N shares\nthe market\n\nsaid the <unk> of it\n" >"$tmp/shard.txt"
"$manylm" train --train "$tmp/shard.txt" --valid "$tmp/shard.txt" --test "$tmp/shard.txt" --hidden 4 --embed 4 \
  --batch 1 --bptt 2 --epochs 1 --threads 1 --cache-dir "$tmp/cache2" --out "$tmp/run2" >/dev/null 2>&1
{ cat "$tmp"/cache2/*.shard; printf '%s' "$sep"; cat "$tmp"/cache2/*.vocab; } >"$s/shard_cache/record-vocab"
{ cat "$tmp"/cache2/*.shard; printf '%s' "$sep"; } >"$s/shard_cache/record"
# corpus_record: the run's corpus.json (names as given, without the temporary directory), and a changed one.
sed "s|$tmp/||g" "$run/corpus.json" >"$s/corpus_record/corpus.json"
sed 's/"bytes":1000,"hash":"3af5/"bytes":1001,"hash":"3af6/' "$s/corpus_record/corpus.json" >"$s/corpus_record/changed.json"
# nbest: two selector bytes (nbest_fuzz.cc's kRegexes) and an expression, utt2spk, the n-best lines.
printf '\000\000%s%sutt1-1 the cat sat\nutt1-2 the cat  sat on\tthe mat\r\n\nutt2-1 a caf\xc3\xa9 zebra\n' "$sep" "$sep" \
  >"$s/nbest/kaldi-keys"
printf '\001\000%sutt1 spk1\nutt2 spk1\n%sutt1-1 the cat\nutt2-1 a mat\nutt2-2 mat\n' "$sep" "$sep" >"$s/nbest/utt2spk"
printf '\002\005%s%ss1_a-1 the\ns2_b-1 a cat\n' "$sep" "$sep" >"$s/nbest/conversation-regex"
printf '\010\010^([a-z]+)[0-9]|x%s%sab12-1 on the mat\n' "$sep" "$sep" >"$s/nbest/own-regex"
du -sh "$s"; find "$s" -type f | wc -l
