#!/usr/bin/env bash
# measure.sh — the emulated-cluster measurements of docs/RESULTS.md and docs/SCALING.md §14, one emulate.sh run
# per (nodes, rate, what): `manylm bench comm --part step` (step time three ways and the hidden share, every
# scheme in the same run) for each recipe, and `bench comm --part sizes` (reduction time against bucket size,
# for the alpha-beta fit). Writes OUT/<nodes>n-<rate>-<what>.json (bench comm's JSON) and .emu.json (the
# emulation: measured link rate, bytes per node); bench/cluster/report.py turns them into tables.
#
#   bench/cluster/measure.sh BINARY OUT [--nodes "2 4"] [--rates "100mbit 1gbit"]
#                            [--recipes "ptb-small ptb-medium"] [--steps N] [--repeats N] [--no-sizes]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bin=${1:?usage: measure.sh BINARY OUT [options]}
out=${2:?usage: measure.sh BINARY OUT [options]}
shift 2
nodes_list="2 4" rates="100mbit 1gbit" recipes="ptb-small ptb-medium" steps=3 repeats=3 sizes=1
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) nodes_list=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --recipes) recipes=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --no-sizes) sizes=0; shift ;;
    *) echo "measure.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
data=$src/data; [ -f "$data/ptb/train.txt" ] || data=$src/../shared/data
mkdir -p "$out"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
run() {  # run NAME NODES RATE ARGS... : one emulation, bench comm's JSON on stdout into OUT/NAME.json
  local name=$1 nodes=$2 rate=$3
  shift 3
  echo "$(date -u +%T) $name" >&2
  bash "$here/emulate.sh" --nodes "$nodes" --rate "$rate" --rate-seconds 3 --json "$out/$name.emu.json" \
    -- "$bin" bench comm --data "$data" --threads-list 1 --repeats "$repeats" --json "$@" \
    > "$out/$name.json" 2> "$out/$name.err" || echo "measure.sh: $name failed (see $out/$name.err)" >&2
}
for n in $nodes_list; do
  for rate in $rates; do
    for r in $recipes; do
      run "${n}n-$rate-$r" "$n" "$rate" --recipe "$src/recipes/$r.json" --part step --steps "$steps"
    done
    [ $sizes -eq 1 ] && [ "$n" -eq 2 ] && run "${n}n-$rate-sizes" "$n" "$rate" --part sizes --schemes none,int8
  done
done
echo "$(date -u +%T) done" >&2
