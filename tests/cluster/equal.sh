#!/bin/bash
# equal.sh BINARY SOURCE_DIR — 2 emulated nodes (network namespaces) joined by a 100 Mbit/s shaped TCP link
# (bench/cluster/emulate.sh): a short training run over them gives the 1-process run's result (validation and
# test perplexity within 1e-4 relative: the sum of two half-batch gradients rounds differently), and the
# gradient bytes crossed the shaped link (veth counters). Skips (77) where namespaces cannot be made.
. "$(dirname "$0")/../lib.sh" cluster-eq "$@"
args=(train --data "$data" --cell lstm --hidden 32 --embed 32 --layers 1 --vocab-size 1000 --cache-dir "$dir/cache"
      --threads 1 --max-steps 20 --json)
"$bin" "${args[@]}" --out "$dir/one" > "$dir/one.json" 2> "$dir/one.err" || { cat "$dir/one.err"; exit 1; }
bash "$src/bench/cluster/emulate.sh" --nodes 2 --rate 100mbit --rate-seconds 1 --name "ceq$$" --json "$dir/emu.json" \
  -- "$bin" "${args[@]}" --out "$dir/two" > "$dir/two.json" 2> "$dir/two.err"
status=$?
if [ $status -eq 77 ]; then grep skipped "$dir/two.json" "$dir/two.err"; exit 77; fi
[ $status -eq 0 ] || { echo "FAIL: 2-node run exited $status"; cat "$dir/two.err"; exit 1; }
python3 - "$dir/one.json" "$dir/two.json" "$dir/emu.json" <<'PY'
import json, sys
one, two, emu = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:4])
print("1 process: valid %.6f test %.6f | 2 nodes: valid %.6f test %.6f, ranks %d" %
      (one["valid_ppl"], one["test_ppl"], two["valid_ppl"], two["test_ppl"], two["ranks"]))
print("link: %s Mbit/s measured; bytes into node0/node1: %s" % (emu["measured_mbit"], [n["bytes_in"] for n in emu["per_node"]]))
ok = two["ranks"] == 2
for k in ("valid_ppl", "test_ppl"):
    rel = abs(one[k] - two[k]) / one[k]
    if rel > 1e-4: print("FAIL: %s differs by %.2e relative" % (k, rel)); ok = False
# 73,448 gradient values; the dense block (all but the embedding's rows) goes both ways each step: > 20 x 100 KB
sent = two["gradients"]["wire_bytes_per_step"] * two["steps"]
if min(n["bytes_in"] for n in emu["per_node"]) < sent:
    print("FAIL: less than the %d gradient bytes crossed the shaped link" % sent); ok = False
if not (emu["measured_mbit"] and 50 < emu["measured_mbit"] < 110):
    print("FAIL: the link's measured rate is not about 100 Mbit/s"); ok = False
sys.exit(0 if ok else 1)
PY
