#!/usr/bin/env bash
# manylm set-up: installs every build and test dependency from Debian's archive (idempotent).
# Usage: scripts/setup.sh [--peers]   (--peers adds Debian's python3-torch for golden files and peer benches)
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config git clang libclang-rt-dev
      libcli11-dev libfmt-dev nlohmann-json3-dev
      libopenblas-openmp-dev libgtest-dev libbenchmark-dev
      libxsmm-dev libblis-openmp-dev libhwy-dev libdnnl-dev librandom123-dev
      openmpi-bin libopenmpi-dev gnuplot-nox python3 clang-format
      iproute2 iperf3 nftables
      python3-dev python3-numpy python3-pytest python3-venv pybind11-dev)
if [ "${1:-}" = "--peers" ]; then pkgs+=(python3-torch python3-numpy python3-venv); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "setup: all ${#pkgs[@]} packages present"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
echo "setup: installing ${missing[*]}" >&2
$SUDO apt-get update -qq || { echo "setup: apt-get update failed" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
  || { echo "setup: apt-get install failed for: ${missing[*]}" >&2; exit 1; }
echo "setup: installed ${#missing[@]} packages"
