#!/usr/bin/env bash
# rescore_pytorch.sh MANYLM SOURCE_DIR — `manylm rescore`'s costs equal PyTorch's over the same weights within 1e-4
# (relative): tiny LSTM, GRU-adaptive and Elman runs on PTB's first lines (or, without PTB, the test's own text),
# 20-best lists made by bench/rescore/nbest.py, scored by both PyTorch peers (bench/peers/rescore_per_sentence.py,
# rescore_batched.py) with Debian's python3-torch. Skips (77) without torch.
set -euo pipefail
bin=$1 src=$2
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "no torch for /usr/bin/python3: skipped"; exit 77; }
dir=$(mktemp -d /tmp/manylm-rescore-pt-XXXXXX)
trap 'rm -rf "$dir"' EXIT
ptb=""
for d in "$src/data/ptb" "$src/../shared/data/ptb"; do [ -f "$d/train.txt" ] && ptb=$d && break; done
if [ -n "$ptb" ]; then
  head -n 3000 "$ptb/train.txt" > "$dir/train.txt"; head -n 300 "$ptb/valid.txt" > "$dir/valid.txt"
  head -n 60 "$ptb/test.txt" > "$dir/test.txt"
else
  /usr/bin/python3 -c "
import random; r = random.Random(1); w = 'the cat sat on a mat dog ran to big small house'.split()
for f, n in (('train', 2000), ('valid', 200), ('test', 60)):
    open('$dir/' + f + '.txt', 'w').write(''.join(' '.join(r.choice(w) for _ in range(r.randint(3, 12))) + '\n'
                                                  for _ in range(n)))"
fi
/usr/bin/python3 "$src/bench/rescore/nbest.py" make --text "$dir/test.txt" --out "$dir/nbest" --sentences 60
status=0
for spec in "lstm" "gru --output adaptive --cutoffs 100,1000" "elman"; do
  run="$dir/run-${spec%% *}"
  OMP_NUM_THREADS=1 "$bin" train --train "$dir/train.txt" --valid "$dir/valid.txt" --test "$dir/test.txt" \
    --cell $spec --hidden 16 --embed 16 --layers 2 --batch 8 --bptt 10 --epochs 1 --threads 1 \
    --cache-dir "$dir/cache" --out "$run" > /dev/null
  "$bin" rescore --model "$run" --nbest "$dir/nbest" --threads 1 > "$dir/manylm.txt" 2> /dev/null
  for peer in rescore_per_sentence rescore_batched; do
    /usr/bin/python3 "$src/bench/peers/$peer.py" "$run" "$dir/nbest" "$dir/$peer.txt" --threads 1 > /dev/null
    /usr/bin/python3 - "$dir/manylm.txt" "$dir/$peer.txt" "${spec%% *} $peer" <<'PY' || status=1
import sys
a = [l.split() for l in open(sys.argv[1])]
b = [l.split() for l in open(sys.argv[2])]
assert len(a) == len(b) == 1200, (len(a), len(b))
worst = max(abs(float(x[1]) - float(y[1])) / abs(float(y[1])) for x, y in zip(a, b) if x[0] == y[0] or sys.exit(1))
print(f"{sys.argv[3]}: {len(a)} costs, largest relative difference {worst:.2e}")
sys.exit(0 if worst <= 1e-4 else 1)
PY
  done
done
exit $status
