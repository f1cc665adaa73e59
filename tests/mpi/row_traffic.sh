#!/bin/bash
# row_traffic.sh BINARY SOURCE_DIR — the embedding rows' traffic as the commands report it, on a tiny LSTM over a
# PTB slice. (1) `mpirun -np 2 manylm bench comm --part step`: with sparse updates (SGD, auto) it runs the real
# step (the embedding's gradient as rows) and reports the dense block's and the rows' bytes per step apart, both
# positive; with --sparse-updates off, no row columns. (2) `mpirun -np 2 manylm train --json`: row_bytes_per_step
# under "gradients" (positive with sparse updates, 0 without) and the last gradients line's "MB of embedding rows"
# only when there are rows. Started by ctest.
. "$(dirname "$0")/../lib.sh" row-traffic "$@"
for f in train valid test; do head -500 "$data/ptb/$f.txt" > "$dir/$f.txt"; done
fail=0
for sparse in auto off; do
  cat > "$dir/recipe-$sparse.json" <<JSON
{"train": "$dir/train.txt", "valid": "$dir/valid.txt", "test": "$dir/test.txt", "cache-dir": "$dir/cache",
 "cell": "lstm", "hidden": 16, "embed": 16, "batch": 4, "bptt": 5, "sparse-updates": "$sparse"}
JSON
  if ! mpirun --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$bin" bench comm --part step \
    --recipe "$dir/recipe-$sparse.json" --steps 2 --repeats 1 --schemes none,int8 --json > "$dir/$sparse.json" \
    2> "$dir/$sparse.err"; then
    echo "FAIL: bench comm with --sparse-updates $sparse"; cat "$dir/$sparse.err"; fail=1; continue
  fi
  python3 - "$dir/$sparse.json" "$sparse" <<'PY' || fail=1
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
sparse = sys.argv[2] == "auto"
assert len(rows) == 2, rows
for r in rows:
    print(sys.argv[2], r["scheme"], "dense MB/step", r["wire_MB_per_step"], "row MB/step", r.get("row_MB_per_step"),
          "rows/step", r.get("rows_per_step"))
    assert r["wire_MB_per_step"] > 0, r
    if sparse:
        assert r["row_MB_per_step"] > 0 and 0 < r["rows_per_step"] <= 20, r  # at most the window's 4 x 5 tokens
    else:
        assert "row_MB_per_step" not in r and "rows_per_step" not in r, r
PY
done
for sparse in auto off; do
  if ! mpirun --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$bin" train \
    --config "$dir/recipe-$sparse.json" --max-steps 3 --threads 1 --out "$dir/run-$sparse" --json \
    > "$dir/train-$sparse.json" 2> "$dir/train-$sparse.err"; then
    echo "FAIL: train with --sparse-updates $sparse"; cat "$dir/train-$sparse.err"; fail=1; continue
  fi
  line=$(grep "^gradients" "$dir/train-$sparse.err")
  echo "$sparse: $line"
  python3 - "$dir/train-$sparse.json" "$sparse" "$line" <<'PY' || fail=1
import json, sys
g = json.load(open(sys.argv[1]))["gradients"]
sparse = sys.argv[2] == "auto"
print(sys.argv[2], "row_bytes_per_step", g["row_bytes_per_step"], "wire_bytes_per_step", g["wire_bytes_per_step"])
assert (g["row_bytes_per_step"] > 0) == sparse, g
assert ("MB of embedding rows" in sys.argv[3]) == sparse, sys.argv[3]
PY
done
exit $fail
