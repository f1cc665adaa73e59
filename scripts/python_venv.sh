#!/usr/bin/env bash
# python_venv.sh — a cached virtual environment of Debian's python3 with what the Python module's optional parts
# need from PyPI: onnx and onnxruntime (ONNX export and its test) and scikit-build-core (pip install .). Idempotent;
# prints the venv's python. VENV=${MANYLM_PY_VENV:-$HOME/.cache/manylm/py-venv}
set -euo pipefail
venv=${MANYLM_PY_VENV:-$HOME/.cache/manylm/py-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import onnx, onnxruntime, numpy, pytest" 2>/dev/null; then
  command -v apt-get >/dev/null && ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 && apt-get install -y python3-venv >&2
  /usr/bin/python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --progress-bar off -q onnx onnxruntime numpy pytest scikit-build-core >&2
fi
echo "$venv/bin/python"
