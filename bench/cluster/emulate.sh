#!/usr/bin/env bash
# emulate.sh — a small cluster emulated on this machine: N nodes, each a network namespace with its own
# hostname (UTS namespace, per process tree), joined by veth pairs through one bridge, every link shaped to
# --rate in both directions (tc tbf on both ends of each veth). It measures the rate a link really reaches
# (iperf3, node 0 -> node 1), runs `mpirun` across the nodes over TCP only (pml ob1, btl tcp,self, the node's
# own interface only), reads the veth byte counters before and after (proof that the traffic crossed the shaped
# links), optionally injects one fault, prints a table (and --json FILE), and always tears everything down,
# also on failure or Ctrl-C. Run as root. Not a benchmark itself: the command it runs measures.
#
#   bench/cluster/emulate.sh --nodes 2 --rate 100mbit -- build/manylm bench comm --recipe recipes/ptb-small.json
#
# Addresses: 169.254.77.0/24 (link-local, which no routed network uses), only on the nodes' interfaces; the
# bridge has none and nothing is routed or forwarded anywhere else. mpirun itself runs inside node 0; the
# other nodes are reached through an rsh agent (plm_rsh_agent) that enters the node's namespace. Each node's
# processes run on the CPUs given by --cpus (default: the machine's CPUs dealt round-robin, one per node).
# Exit status: the command's; 77 when network namespaces cannot be made here (not root, no permission);
# 2 for bad arguments.
set -uo pipefail

usage() {
  cat <<'EOF'
usage: emulate.sh [options] [-- COMMAND ARGS...]
  --nodes N            emulated nodes (default 2; 2..64)
  --ranks-per-node R   MPI ranks on each node (default 1)
  --rate RATE          tc rate of every link, each direction: 100mbit, 1gbit, ... or none (default 1gbit)
  --threads T          OMP_NUM_THREADS of every rank (default 1)
  --cpus LIST          CPUs per node, ';'-separated lists for taskset (default: round-robin, one per node)
  --rate-seconds S     iperf3 time to measure the link (default 2; 0: do not measure)
  --timeout S          end the command (SIGTERM to mpirun, then SIGKILL) after S seconds (default 0: none)
  --fault KIND         inject one fault: link-down | drop:PCT | stop | kill
  --fault-node K       the node the fault hits (default 1)
  --fault-when PATH    wait until PATH exists before counting --fault-after (default: the command's start)
  --fault-after S      seconds to wait (default 5)
  --launcher-grace S   after a fault: stop mpirun S seconds after its last rank process ended (default 10)
  --mca "ARGS"         more mpirun arguments (appended)
  --env NAME=VALUE     set in every rank (repeatable)
  --name ID            name prefix of namespaces and links (default: mlc + random hex; unique per run)
  --json FILE          write what was measured as one JSON object to FILE ('-': stdout, after the table)
  --quiet              no table
  --cleanup ID         remove what a killed emulate.sh with this --name left behind, then exit
EOF
}

die() { echo "emulate.sh: $*" >&2; exit 2; }

nodes=2 rpn=1 rate=1gbit threads=1 cpus="" rate_seconds=2 timeout_s=0
fault="" fault_node=1 fault_when="" fault_after=5 launcher_grace=10 mca="" id="" json="" quiet=0 cleanup_only=""
envs=()
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --ranks-per-node) rpn=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --rate-seconds) rate_seconds=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --fault) fault=$2; shift 2 ;;
    --fault-node) fault_node=$2; shift 2 ;;
    --fault-when) fault_when=$2; shift 2 ;;
    --fault-after) fault_after=$2; shift 2 ;;
    --launcher-grace) launcher_grace=$2; shift 2 ;;
    --mca) mca=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --name) id=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --cleanup) cleanup_only=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
cmd=("$@")
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_uint "$nodes" && [ "$nodes" -ge 2 ] && [ "$nodes" -le 64 ] || die "--nodes: '$nodes' is not a number in 2..64"
is_uint "$rpn" && [ "$rpn" -ge 1 ] || die "--ranks-per-node: '$rpn' is not a positive number"
is_uint "$threads" && [ "$threads" -ge 1 ] || die "--threads: '$threads' is not a positive number"
[[ $rate == none || $rate =~ ^[0-9]+(\.[0-9]+)?(kbit|mbit|gbit)$ ]] || die "--rate: '$rate' is not none or N{kbit,mbit,gbit}"
[[ $rate_seconds =~ ^[0-9]+$ ]] || die "--rate-seconds: '$rate_seconds' is not a whole number of seconds"
[[ $timeout_s =~ ^[0-9]+$ ]] || die "--timeout: '$timeout_s' is not a whole number of seconds"
[[ $launcher_grace =~ ^[0-9]+$ ]] || die "--launcher-grace: '$launcher_grace' is not a whole number of seconds"
[[ $fault_after =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--fault-after: '$fault_after' is not a number of seconds"
is_uint "$fault_node" && [ "$fault_node" -lt "$nodes" ] || die "--fault-node: '$fault_node' is not a node in 0..$((nodes - 1))"
case $fault in
  ""|link-down|stop|kill) ;;
  drop:*) [[ ${fault#drop:} =~ ^[0-9]+$ ]] && [ "${fault#drop:}" -le 100 ] || die "--fault: drop:PCT needs PCT in 0..100" ;;
  *) die "--fault: '$fault' is not link-down, drop:PCT, stop or kill" ;;
esac
[ -z "$fault" ] || [ ${#cmd[@]} -gt 0 ] || die "--fault needs a command to inject it into"
if [ -n "$id" ] || [ -n "$cleanup_only" ]; then
  [[ ${cleanup_only:-$id} =~ ^[a-z][a-z0-9]{1,9}$ ]] || die "--name/--cleanup: '${cleanup_only:-$id}' must be 2-10 of [a-z0-9], a letter first"
fi

ns_of() { echo "$id-n$1"; }      # node k's network namespace
hveth() { echo "${id}h$1"; }     # node k's veth, host side (the node's side is called mlnet0 inside it)
bridge() { echo "${id}br"; }
addr_of() { echo "169.254.77.$(($1 + 1))"; }

# Everything of this run, whatever state it reached: processes in the namespaces, namespaces (their veth ends
# and qdiscs go with them), host-side veths, the bridge, the agent script.
cleanup() {
  local ns pids dev
  for ns in /run/netns/"$id"-n*; do
    [ -e "$ns" ] || continue
    pids=$(ip netns pids "${ns##*/}" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  done
  for ns in /run/netns/"$id"-n*; do [ -e "$ns" ] && ip netns del "${ns##*/}" 2>/dev/null; done
  for dev in $(ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1 | grep "^$id"); do
    ip link del "$dev" 2>/dev/null
  done
  [ -n "${work:-}" ] && rm -rf "$work"
  return 0
}

if [ -n "$cleanup_only" ]; then id=$cleanup_only; cleanup; echo "emulate.sh: removed what '$id' left"; exit 0; fi

for tool in ip tc nsenter unshare taskset mpirun; do
  command -v $tool >/dev/null || { echo "emulate.sh: skipped: '$tool' is not installed"; exit 77; }
done
if [ -z "$id" ]; then
  for _ in 1 2 3 4 5; do
    id=mlc$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    [ -e "/run/netns/$(ns_of 0)" ] || ip link show "$(bridge)" >/dev/null 2>&1 || break
  done
fi
[ -e "/run/netns/$(ns_of 0)" ] && die "--name: namespaces named '$id-*' exist already (another run, or --cleanup $id)"

work=$(mktemp -d /tmp/manylm-emulate-XXXXXX)
mpirun_pid=""
on_signal() {
  echo "emulate.sh: $1: stopping the command and tearing down" >&2
  [ -n "$mpirun_pid" ] && kill -TERM "$mpirun_pid" 2>/dev/null && sleep 2
  exit 130
}
trap cleanup EXIT
trap 'on_signal SIGINT' INT
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGHUP' HUP
trap 'on_signal SIGPIPE' PIPE

# --- the nodes ---
if ! ip netns add "$(ns_of 0)" 2>"$work/err"; then
  echo "emulate.sh: skipped: cannot create a network namespace here ($(head -1 "$work/err")); run as root"
  exit 77
fi
ip link add "$(bridge)" type bridge || exit 1
ip link set "$(bridge)" up || exit 1
burst=$((256 * 1024))
shape() {  # shape NETNS-ARGS... DEV: tbf at --rate on DEV's egress
  [ "$rate" = none ] && return 0
  tc "$@" root tbf rate "$rate" burst $burst latency 20ms
}
for ((k = 0; k < nodes; k++)); do
  ns=$(ns_of $k)
  [ $k -eq 0 ] || ip netns add "$ns" || exit 1
  ip link add "$(hveth $k)" type veth peer name "${id}n$k" || exit 1
  ip link set "${id}n$k" netns "$ns" || exit 1
  ip -n "$ns" link set "${id}n$k" name mlnet0 || exit 1
  ip -n "$ns" addr add "$(addr_of $k)/24" dev mlnet0 || exit 1
  ip -n "$ns" link set lo up && ip -n "$ns" link set mlnet0 up || exit 1
  ip link set "$(hveth $k)" master "$(bridge)" up || exit 1
  shape qdisc add dev "$(hveth $k)" || exit 1              # into the node
  shape -n "$ns" qdisc add dev mlnet0 || exit 1            # out of the node
done

ncpu=$(nproc)
cpus_of() {  # node k's CPU list
  if [ -n "$cpus" ]; then echo "$cpus" | cut -d';' -f$(($1 + 1)); else echo $(($1 % ncpu)); fi
}
for ((k = 0; k < nodes; k++)); do
  [ -n "$(cpus_of $k)" ] || die "--cpus: no CPU list for node $k"
  taskset -c "$(cpus_of $k)" true 2>/dev/null || die "--cpus: '$(cpus_of $k)' (node $k) is not a CPU list here"
done

# The rsh agent: `agent HOST COMMAND...` runs COMMAND in node HOST's namespace, hostname and CPUs.
cat > "$work/agent" <<EOF
#!/bin/bash
host=\$1; shift
k=\${host#node}
case \$k in ''|*[!0-9]*) echo "emulate agent: unknown host '\$host'" >&2; exit 1 ;; esac
cpus=\$(sed -n "\$((k + 1))p" "$work/cpus")
exec nsenter --net=/run/netns/$id-n\$k -- unshare --uts -- taskset -c "\$cpus" /bin/sh -c "hostname \$host; \$*"
EOF
chmod +x "$work/agent"
for ((k = 0; k < nodes; k++)); do cpus_of $k; done > "$work/cpus"

# --- the link's real rate (node 0 -> node 1) ---
measured_mbit=null
if [ "$rate_seconds" -gt 0 ] && command -v iperf3 >/dev/null; then
  nsenter --net="/run/netns/$(ns_of 1)" iperf3 -s -1 -B "$(addr_of 1)" >/dev/null 2>&1 &
  srv=$!
  for _ in $(seq 50); do
    nsenter --net="/run/netns/$(ns_of 1)" ss -ltn 2>/dev/null | grep -q ':5201 ' && break
    sleep 0.1
  done
  if nsenter --net="/run/netns/$(ns_of 0)" iperf3 -c "$(addr_of 1)" -t "$rate_seconds" -J > "$work/iperf.json" 2>&1; then
    measured_mbit=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' "$work/iperf.json" 2>/dev/null || echo null)
  fi
  wait $srv 2>/dev/null
elif [ "$rate_seconds" -gt 0 ]; then
  echo "emulate.sh: iperf3 not installed: the link's real rate is not measured (scripts/setup.sh installs it)" >&2
fi

counters() {  # per node: bytes into the node, bytes out of it (host side of its veth)
  local k d
  for ((k = 0; k < nodes; k++)); do
    d=/sys/class/net/$(hveth $k)/statistics
    echo "$(cat $d/tx_bytes) $(cat $d/rx_bytes)"
  done
}

later() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { exit !(a - b > d) }'; }  # later T T0 D: T - T0 > D

# The command's processes (named like its program) in every node's namespace.
rank_pids() {
  local k p prog
  prog=$(basename "${cmd[0]}" | cut -c1-15)
  for ((k = 0; k < nodes; k++)); do
    for p in $(ip netns pids "$(ns_of $k)" 2>/dev/null); do
      [ "$(cat /proc/$p/comm 2>/dev/null)" = "$prog" ] && echo "$k $p"
    done
  done
}

inject() {
  local pids
  case $fault in
    link-down) ip link set "$(hveth $fault_node)" down ;;
    drop:*)  # every packet in and out of the node with probability PCT % (nftables' numgen)
      local rule="numgen random mod 100 < ${fault#drop:} drop"
      [ "${fault#drop:}" -eq 100 ] && rule=drop
      ip netns exec "$(ns_of $fault_node)" nft -f - <<NFT
table inet manylm_fault {
  chain in { type filter hook input priority 0; $rule; }
  chain out { type filter hook output priority 0; $rule; }
}
NFT
    ;;
    stop|kill)
      pids=$(rank_pids | awk -v k="$fault_node" '$1 == k { print $2 }')
      [ -n "$pids" ] || { echo "emulate.sh: fault $fault: no rank process on node$fault_node" >&2; return 0; }
      kill -"$([ "$fault" = stop ] && echo STOP || echo KILL)" $pids ;;
  esac
}

# Background: injects the fault when due, notes when the last rank process is gone, stops a launcher that
# outlives its ranks by --launcher-grace seconds (mpirun waits for a daemon behind a cut link), and --timeout.
watch_job() {
  local t due="" injected=0 gone=""
  [ -z "$fault" ] && injected=1
  while kill -0 "$mpirun_pid" 2>/dev/null; do
    t=$(date +%s.%N)
    if [ $injected -eq 0 ]; then
      [ -z "$due" ] && { [ -z "$fault_when" ] || [ -e "$fault_when" ]; } && due=$t
      if [ -n "$due" ] && later "$t" "$due" "$fault_after"; then
        echo "$t" > "$work/fault_at"
        inject
        injected=1
      fi
    elif [ -n "$fault" ] && [ -z "$gone" ]; then
      [ -z "$(rank_pids)" ] && gone=$t && echo "$t" > "$work/ranks_gone"
    elif [ -n "$gone" ] && later "$t" "$gone" "$launcher_grace"; then
      touch "$work/launcher_killed"
      kill -TERM "$mpirun_pid"; sleep 2; kill -KILL "$mpirun_pid" 2>/dev/null
      return
    fi
    if [ "$timeout_s" -gt 0 ] && later "$t" "$t0" "$timeout_s"; then
      touch "$work/timed_out"
      kill -TERM "$mpirun_pid"; sleep 5; kill -KILL "$mpirun_pid" 2>/dev/null
      return
    fi
    sleep 0.2
  done
}

minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

# --- the command ---
status=0; seconds=0; fault_at=""; ended_after=""; ranks_gone_after=""
counters > "$work/before"
if [ ${#cmd[@]} -gt 0 ]; then
  hosts=""
  for ((k = 0; k < nodes; k++)); do hosts+="${hosts:+,}node$k:$rpn"; done
  quoted=$(printf '%q ' "${cmd[@]}")
  xenv="-x OMP_NUM_THREADS=$threads"
  for e in "${envs[@]}"; do xenv+=" -x $(printf '%q' "$e")"; done
  mpirun_line="mpirun --allow-run-as-root -np $((nodes * rpn)) --host $hosts --bind-to none \
    --mca plm_rsh_agent $work/agent --mca pml ob1 --mca btl tcp,self \
    --mca btl_tcp_if_include mlnet0 --mca oob_tcp_if_include mlnet0 $xenv $mca $quoted"
  echo "$mpirun_line" > "$work/mpirun_line"
  t0=$(date +%s.%N)
  nsenter --net="/run/netns/$(ns_of 0)" -- unshare --uts -- taskset -c "$(cpus_of 0)" \
    /bin/sh -c "hostname node0; exec $mpirun_line" &
  mpirun_pid=$!
  if [ -n "$fault" ] || [ "$timeout_s" -gt 0 ]; then
    watch_job &
    watcher=$!
  fi
  wait $mpirun_pid
  status=$?
  t1=$(date +%s.%N)
  mpirun_pid=""
  [ -n "${watcher:-}" ] && kill $watcher 2>/dev/null && wait $watcher 2>/dev/null
  seconds=$(minus "$t1" "$t0")
  if [ -f "$work/fault_at" ]; then
    fault_at=$(minus "$(cat "$work/fault_at")" "$t0")
    ended_after=$(minus "$t1" "$(cat "$work/fault_at")")
    [ -f "$work/ranks_gone" ] && ranks_gone_after=$(minus "$(cat "$work/ranks_gone")" "$(cat "$work/fault_at")")
  fi
fi
counters > "$work/after"

# --- report ---
timed_out=false; [ -f "$work/timed_out" ] && timed_out=true
launcher_killed=false; [ -f "$work/launcher_killed" ] && launcher_killed=true
json_nodes=""
table=$(printf '%-6s %-16s %-15s %-8s %12s %12s\n' node namespace address cpus "MB_in" "MB_out")
for ((k = 0; k < nodes; k++)); do
  read -r in0 out0 < <(sed -n "$((k + 1))p" "$work/before")
  read -r in1 out1 < <(sed -n "$((k + 1))p" "$work/after")
  din=$((in1 - in0)); dout=$((out1 - out0))
  table+=$'\n'$(printf '%-6s %-16s %-15s %-8s %12.3f %12.3f' "node$k" "$(ns_of $k)" "$(addr_of $k)" "$(cpus_of $k)" \
    "$(awk -v b=$din 'BEGIN { print b / 1e6 }')" "$(awk -v b=$dout 'BEGIN { print b / 1e6 }')")
  json_nodes+="${json_nodes:+,}{\"node\":$k,\"namespace\":\"$(ns_of $k)\",\"address\":\"$(addr_of $k)\",\"cpus\":\"$(cpus_of $k)\",\"bytes_in\":$din,\"bytes_out\":$dout}"
done
if [ $quiet -eq 0 ]; then
  {
    echo "emulated cluster: $nodes nodes x $rpn ranks x $threads threads, link rate $rate nominal," \
      "${measured_mbit} Mbit/s measured (iperf3 node0 -> node1, ${rate_seconds} s)"
    echo "$table"
    [ ${#cmd[@]} -gt 0 ] && echo "command: exit status $status after ${seconds} s"
    [ -n "$fault" ] && echo "fault: $fault on node$fault_node at ${fault_at:-never} s; the last rank process ended" \
      "${ranks_gone_after:-n/a} s after it, mpirun ${ended_after:-n/a} s after it"
    $launcher_killed && echo "mpirun outlived its ranks by $launcher_grace s: stopped (its daemon behind the fault)"
    $timed_out && echo "timed out after $timeout_s s: mpirun was stopped"
  } >&2
fi
if [ -n "$json" ]; then
  q() { [ -z "$1" ] && echo null || echo "$1"; }
  out=$(printf '{"nodes":%d,"ranks_per_node":%d,"threads":%d,"rate":"%s","measured_mbit":%s,"status":%d,"seconds":%s,"timed_out":%s,"fault":%s,"fault_node":%d,"fault_at_s":%s,"ranks_gone_after_fault_s":%s,"ended_after_fault_s":%s,"launcher_killed":%s,"per_node":[%s]}' \
    "$nodes" "$rpn" "$threads" "$rate" "$measured_mbit" "$status" "$(q "$seconds")" "$timed_out" \
    "$([ -n "$fault" ] && echo "\"$fault\"" || echo null)" "$fault_node" "$(q "$fault_at")" "$(q "$ranks_gone_after")" "$(q "$ended_after")" "$launcher_killed" "$json_nodes")
  if [ "$json" = - ]; then echo "$out"; else echo "$out" > "$json"; fi
fi
exit $status
