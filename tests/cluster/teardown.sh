#!/bin/bash
# teardown.sh SOURCE_DIR — bench/cluster/emulate.sh leaves no namespace, veth, bridge or qdisc behind: after a
# command that fails, after SIGTERM in the middle of a command, and refuses a --name already in use; without
# the right to make namespaces it skips with a reason (exit 77). Skips (77) where namespaces cannot be made.
set -u
src=$1
emu="$src/bench/cluster/emulate.sh"
id=ctd$$
leftovers() {  # anything named after $1
  { ls /run/netns 2>/dev/null; ip -o link show; tc qdisc show; } | grep -- "$1"
}
fail=0
bash "$emu" --name "$id" --nodes 3 --rate 1gbit --rate-seconds 0 -- false > /tmp/$id.out 2>&1
status=$?
if [ $status -eq 77 ]; then cat /tmp/$id.out; rm -f /tmp/$id.out; exit 77; fi
[ $status -ne 0 ] || { echo "FAIL: a failing command gave status 0"; fail=1; }
if leftovers "$id"; then echo "FAIL: left behind after a failing command"; fail=1; else echo "failing command: nothing left"; fi

bash "$emu" --name "${id}b" --nodes 2 --rate 100mbit --rate-seconds 0 -- sleep 60 > /tmp/$id.out 2>&1 &
job=$!
for _ in $(seq 100); do [ -n "$(ip netns pids "${id}b-n0" 2>/dev/null)" ] && break; sleep 0.1; done
sleep 1
inside=$(ip netns pids "${id}b-n0" 2>/dev/null; ip netns pids "${id}b-n1" 2>/dev/null)
kill -TERM $job
wait $job
echo "SIGTERM in the middle: status $?"
if leftovers "${id}b"; then echo "FAIL: left behind after SIGTERM"; fail=1; else echo "SIGTERM: nothing left"; fi
alive() { [ -e /proc/$1/stat ] && [ "$(awk '{ print $3 }' /proc/$1/stat 2>/dev/null)" != Z ]; }
for p in $inside; do
  for _ in $(seq 30); do alive "$p" || break; sleep 0.1; done
  alive "$p" && { echo "FAIL: process $p of a node outlived the teardown"; fail=1; }
done

ip netns add "${id}c-n0"
bash "$emu" --name "${id}c" --rate-seconds 0 -- true > /tmp/$id.out 2>&1
status=$?
ip netns del "${id}c-n0"
[ $status -eq 2 ] && grep -q "exist already" /tmp/$id.out && echo "a --name in use: refused" ||
  { echo "FAIL: a --name in use was not refused (status $status)"; cat /tmp/$id.out; fail=1; }

if command -v setpriv > /dev/null; then
  setpriv --reuid=65534 --regid=65534 --clear-groups bash "$emu" --rate-seconds 0 -- true > /tmp/$id.out 2>&1
  status=$?
  [ $status -eq 77 ] && grep -q "skipped" /tmp/$id.out && echo "not root: $(cat /tmp/$id.out)" ||
    { echo "FAIL: without the right to make namespaces: status $status"; cat /tmp/$id.out; fail=1; }
fi
rm -f /tmp/$id.out
exit $fail
