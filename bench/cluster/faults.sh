#!/usr/bin/env bash
# faults.sh — fault injection on emulated nodes (bench/cluster/emulate.sh): a short training run on 2 nodes,
# and once it has written a checkpoint, one fault: node's link cut (link-down), all packets or half of them
# dropped (drop:100, drop:50; nftables), the rank frozen (stop, SIGSTOP) or killed (kill, SIGKILL), on node 1 or
# node 0 in turn. Each trial records the seconds from the fault until the last rank process ended and until
# mpirun ended, the exit status, the line(s) manylm printed, and whether the checkpoint named there resumes
# (alternately on 1 rank and on 2 ranks). Prints a table and, with --json FILE, one JSON object per trial.
#
#   bench/cluster/faults.sh BINARY [--timeout S] [--trials "link-down:1 stop:0 ..."] [--json FILE] [--keep DIR]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bin=${1:?usage: faults.sh BINARY [--timeout S] [--trials LIST] [--json FILE] [--keep DIR]}
shift
timeout=4 json="" keep=""
trials="link-down:1 link-down:0 link-down:1 stop:1 stop:0 stop:1 kill:1 kill:0 kill:1 drop:100:1 drop:100:0 drop:50:1"
while [ $# -gt 0 ]; do
  case $1 in
    --timeout) timeout=$2; shift 2 ;;
    --trials) trials=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "faults.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
data=$src/data; [ -f "$data/ptb/train.txt" ] || data=$src/../shared/data
dir=${keep:-$(mktemp -d /tmp/manylm-faults-XXXXXX)}
mkdir -p "$dir"
[ -n "$keep" ] || trap 'rm -rf "$dir"' EXIT
[ -n "$json" ] && : > "$json"
printf '%-4s %-10s %-4s %-6s %-9s %-9s %-7s %-8s %s\n' trial fault node status ranks_s mpirun_s limit_s resumed line
n=0 clean=0
for t in $trials; do
  n=$((n + 1))
  node=${t##*:}; fault=${t%:*}
  run=$dir/t$n
  bash "$here/emulate.sh" --nodes 2 --rate 100mbit --rate-seconds 0 --json "$run.emu.json" --fault "$fault" \
    --fault-node "$node" --fault-when "$run/state.safetensors" --fault-after 2 --launcher-grace 3 --timeout 180 \
    -- "$bin" train --data "$data" --cell lstm --hidden 32 --embed 32 --layers 1 --vocab-size 1000 \
    --cache-dir "$dir/cache" --threads 1 --max-steps 1000000 --checkpoint-steps 10 --comm-timeout "$timeout" \
    --out "$run" > "$run.out" 2> "$run.err"
  status=$?
  line=$(grep -m1 '^manylm: rank [0-9]* of 2:' "$run.err")
  read -r gone ended < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["ranks_gone_after_fault_s"], d["ended_after_fault_s"])' "$run.emu.json")
  step=$(echo "$line" | grep -o 'checkpoint is [^ ]* (step [0-9]*)' | grep -o '[0-9]*)$' | tr -d ')')
  resumed=no
  if [ -n "$step" ]; then
    if [ $((n % 2)) -eq 1 ]; then
      "$bin" train --resume "$run" --max-steps $((step + 3)) --threads 1 --json > "$run.resume.json" 2> "$run.resume.err" &&
        grep -q "\"steps\":$((step + 3))" "$run.resume.json" && resumed="1 rank"
    else
      mpirun --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$bin" train --resume "$run" \
        --max-steps $((step + 3)) --threads 1 --json > "$run.resume.json" 2> "$run.resume.err" &&
        grep -q "\"steps\":$((step + 3))" "$run.resume.json" && resumed="2 ranks"
    fi
  fi
  ok=$(python3 -c "import sys; g=$gone if '$gone' != 'None' else None; sys.exit(0 if g is not None and g <= 2 * $timeout else 1)" && echo y)
  [ "$status" -ne 0 ] && [ -n "$line" ] && [ "$resumed" != no ] && [ "$ok" = y ] && clean=$((clean + 1))
  printf '%-4s %-10s %-4s %-6s %-9s %-9s %-7s %-8s %s\n' "$n" "$fault" "$node" "$status" "$gone" "$ended" \
    $((2 * timeout)) "${resumed// /_}" "${line:-(none)}"
  if [ -n "$json" ]; then
    python3 - "$run.emu.json" "$fault" "$node" "$status" "$resumed" "$line" "${step:-}" "$timeout" >> "$json" <<'PY'
import json, sys
emu = json.load(open(sys.argv[1]))
print(json.dumps({"fault": sys.argv[2], "node": int(sys.argv[3]), "status": int(sys.argv[4]), "resumed": sys.argv[5],
                  "line": sys.argv[6], "checkpoint_step": int(sys.argv[7]) if sys.argv[7] else None,
                  "comm_timeout": float(sys.argv[8]), "ranks_gone_after_fault_s": emu["ranks_gone_after_fault_s"],
                  "mpirun_ended_after_fault_s": emu["ended_after_fault_s"], "launcher_killed": emu["launcher_killed"]}))
PY
  fi
done
echo "$clean of $n trials clean: non-zero status, a line from manylm, every rank gone within 2 x --comm-timeout" \
  "($((2 * timeout)) s), and the checkpoint it names resumes"
[ "$clean" -eq "$n" ]
