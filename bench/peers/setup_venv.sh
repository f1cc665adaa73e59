#!/usr/bin/env bash
# setup_venv.sh — the current PyTorch release from PyPI in a virtual environment, the peer a user would
# pick today (Debian's python3-torch 1.13 is the second peer). Idempotent; prints the venv's python.
#   VENV=${MANYLM_PEERS_VENV:-$HOME/.cache/manylm/peers-venv}
set -euo pipefail
venv=${MANYLM_PEERS_VENV:-$HOME/.cache/manylm/peers-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  command -v apt-get >/dev/null && ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 && apt-get install -y python3-venv >&2
  /usr/bin/python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --progress-bar off torch numpy >&2
fi
echo "$venv/bin/python"
