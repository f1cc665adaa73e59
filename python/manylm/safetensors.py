"""model.safetensors (and state.safetensors) as numpy arrays, standard library and numpy only: what the ONNX export
and the PyTorch peers (bench/peers/, which load this file by path) read manylm's weights with. Checks what a reader
must (header length, F32 dtype, offsets inside the file and matching the shape); manylm's own CRC-32C checksums
(metadata `manylm.checksums`) are verified by manylm when it loads a run, not here.
"""
import json
import struct

import numpy as np


def read_safetensors(path):
    """{name: float32 array} of every tensor in the file (the header's __metadata__ left out)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header of {n} bytes runs past the end of the file")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e.get("dtype") != "F32":
            raise ValueError(f"{path}: tensor {name} is {e.get('dtype')}, not F32")
        b, en = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if not 0 <= b <= en <= len(data) - 8 - n or en - b != 4 * count:
            raise ValueError(f"{path}: tensor {name}'s offsets {b}..{en} do not hold its shape {e['shape']}")
        out[name] = np.frombuffer(data[8 + n + b:8 + n + en], dtype="<f4").reshape(e["shape"]).copy()
    return out
