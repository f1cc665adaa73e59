#!/bin/bash
# link_cut.sh BINARY SOURCE_DIR — 2 emulated nodes; once the run has written a checkpoint, node 1's link is cut
# (ip link set ... down). The watchdog (--comm-timeout 4) must end both ranks within twice the timeout, rank 0
# must print one line naming rank 1 and the resume command, the job's status must be non-zero, and the
# checkpoint must resume (on 1 rank). Skips (77) where namespaces cannot be made.
. "$(dirname "$0")/../lib.sh" cluster-cut "$@"
timeout=4
bash "$src/bench/cluster/emulate.sh" --nodes 2 --rate 100mbit --rate-seconds 0 --name "ccut$$" --json "$dir/emu.json" \
  --fault link-down --fault-node 1 --fault-when "$dir/run/state.safetensors" --fault-after 1 --launcher-grace 2 \
  --timeout 120 -- "$bin" train --data "$data" --cell lstm --hidden 32 --embed 32 --layers 1 --vocab-size 1000 \
  --cache-dir "$dir/cache" --threads 1 --max-steps 1000000 --checkpoint-steps 10 --comm-timeout $timeout \
  --out "$dir/run" > "$dir/out" 2> "$dir/err"
status=$?
if [ $status -eq 77 ]; then grep skipped "$dir/out" "$dir/err"; exit 77; fi
fail=0
line=$(grep '^manylm: rank 0 of 2:' "$dir/err")
echo "status $status; rank 0 said: $line"
echo "emulation: $(cat "$dir/emu.json")"
[ $status -ne 0 ] || { echo "FAIL: the job exited 0"; fail=1; }
[ "$(echo "$line" | wc -l)" -eq 1 ] && echo "$line" | grep -q "rank 1 stopped answering" &&
  echo "$line" | grep -q "resume with mpirun -np 2 .* train --resume $dir/run" ||
  { echo "FAIL: no single line from rank 0 naming rank 1 and the resume command"; cat "$dir/err"; fail=1; }
gone=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ranks_gone_after_fault_s"])' "$dir/emu.json")
echo "ranks gone $gone s after the cut (limit $((2 * timeout)) s)"
python3 -c "import sys; sys.exit(0 if $gone != None and $gone <= 2 * $timeout else 1)" 2>/dev/null ||
  { echo "FAIL: the ranks did not end within twice --comm-timeout"; fail=1; }
step=$(echo "$line" | grep -o '(step [0-9]*)' | grep -o '[0-9]*')
if ! "$bin" train --resume "$dir/run" --max-steps $((step + 5)) --threads 1 --json > "$dir/resumed.json" 2> "$dir/resumed.err" ||
  ! grep -q "\"steps\":$((step + 5))" "$dir/resumed.json"; then
  echo "FAIL: the checkpoint of step $step does not resume on 1 rank"; cat "$dir/resumed.err"; fail=1
else
  echo "resumed on 1 rank from step $step to $((step + 5))"
fi
exit $fail
