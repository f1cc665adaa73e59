#!/usr/bin/env bash
# python_onnx.sh SOURCE_DIR TEST.py — runs the ONNX export's pytest file with the cached virtual environment's python
# (onnx, onnxruntime from PyPI: scripts/python_venv.sh); skips (77) when that environment cannot be made.
set -euo pipefail
py=$(bash "$1/scripts/python_venv.sh" 2>/dev/null) || { echo "no onnx/onnxruntime environment: skipped"; exit 77; }
exec "$py" -m pytest -q -p no:cacheprovider "$2"
