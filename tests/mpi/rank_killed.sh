#!/bin/bash
# rank_killed.sh BINARY SOURCE_DIR — (1) Ctrl-C on mpirun: every rank stops at the same step, rank 0
# saves a checkpoint, and the run resumes on one rank. (2) A rank killed (SIGKILL) in the middle of a
# 2-rank run: the job must end within 10 s with a message naming the rank, exit non-zero, and leave the
# last checkpoint intact (it evaluates); rank 0 prints one line naming that checkpoint and the command that
# resumes it. Started by ctest.
. "$(dirname "$0")/../lib.sh" kill "$@"
small="--data $data --cell lstm --hidden 32 --embed 32 --layers 1 --cache-dir $dir/cache --threads 1 --progress-seconds 1"
mpirun --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$bin" train $small --max-steps 1000000 \
  --out "$dir/int" > "$dir/int.out" 2> "$dir/int.err" &
int=$!
for _ in $(seq 600); do grep -q "step" "$dir/int.err" 2>/dev/null && break; sleep 0.2; done
kill -INT $int
wait $int
echo "after SIGINT: exit status $?"
grep "checkpoint saved" "$dir/int.err" || { echo "FAIL: no checkpoint after SIGINT"; cat "$dir/int.err"; exit 1; }
step=$(grep -o "signal at step [0-9]*" "$dir/int.err" | grep -o "[0-9]*$")
"$bin" train --resume "$dir/int" --max-steps $((step + 10)) --json > "$dir/resumed.json" 2> "$dir/resumed.err" ||
  { echo "FAIL: the interrupted run does not resume on one rank"; cat "$dir/resumed.err"; exit 1; }
grep -q "\"steps\":$((step + 10))" "$dir/resumed.json" || { echo "FAIL: resumed run: $(cat "$dir/resumed.json")"; exit 1; }
echo "resumed on one rank from step $step to $((step + 10))"

mpirun --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$bin" train --data "$data" --cell lstm \
  --hidden 32 --embed 32 --layers 1 --checkpoint-steps 5 --max-steps 1000000 --cache-dir "$dir/cache" \
  --out "$dir/run" > "$dir/out.txt" 2> "$dir/err.txt" &
job=$!
for _ in $(seq 600); do [ -f "$dir/run/state.safetensors" ] && break; sleep 0.2; done
[ -f "$dir/run/state.safetensors" ] || { echo "FAIL: no checkpoint after 120 s"; cat "$dir/err.txt"; kill $job; exit 1; }
victim=""
for p in $(pgrep -f "$dir/run"); do
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then victim=$p; fi
done
[ -n "$victim" ] || { echo "FAIL: rank 1 not found"; kill $job; exit 1; }
sleep 1
kill -9 "$victim"
t0=$(date +%s.%N)
wait $job
status=$?
t1=$(date +%s.%N)
took=$(echo "$t1 - $t0" | bc)
echo "job ended $took s after rank 1 was killed, exit status $status"
grep -i "rank 1" "$dir/err.txt" | head -3
fail=0
if [ "$status" -eq 0 ]; then echo "FAIL: the job exited 0"; fail=1; fi
if [ "$(echo "$took > 10" | bc)" -eq 1 ]; then echo "FAIL: took more than 10 s"; fail=1; fi
grep -qi "rank 1" "$dir/err.txt" || { echo "FAIL: no message naming rank 1"; cat "$dir/err.txt"; fail=1; }
# manylm's own line (the watchdog's heartbeat sees rank 1's port closed): the checkpoint and the resume command
line=$(grep "^manylm: rank 0 of 2: rank 1 ended without leaving the job" "$dir/err.txt")
echo "rank 0 said: $line"
echo "$line" | grep -q "the last intact checkpoint is $dir/run (step [0-9]*): resume with mpirun -np 2 .* train --resume $dir/run" ||
  { echo "FAIL: rank 0 did not name the last checkpoint and the resume command"; cat "$dir/err.txt"; fail=1; }
if ! "$bin" eval --model "$dir/run" --data "$data" --cache-dir "$dir/cache" --threads 1 --json > "$dir/eval.json"; then
  echo "FAIL: the last checkpoint does not evaluate"; fail=1
else
  echo "checkpoint intact: $(cat "$dir/eval.json")"
fi
exit $fail
