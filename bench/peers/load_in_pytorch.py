#!/usr/bin/python3
"""Loads a manylm run into the PyTorch model of pytorch/examples' word_language_model and compares test
perplexities: evidence that model.safetensors is a PyTorch state_dict as it is.

    /usr/bin/python3 bench/peers/load_in_pytorch.py RUN_DIR [TEXT_FILE]

Reads RUN_DIR/config.json, vocab.json and best.safetensors if the run kept one (--keep-best; `manylm
eval` scores it too), else model.safetensors (read by python/manylm/safetensors.py, numpy only, so
no safetensors package is needed), builds RNNModel (encoder → nn.RNN/nn.LSTM/nn.GRU → decoder, the
class of pytorch/examples, dropout off; the decoder nn.AdaptiveLogSoftmaxWithLoss for a run trained with
--output adaptive), calls load_state_dict(strict=True), evaluates TEXT_FILE
(default: the run's test file) with the same batching (batchify to eval-batch lanes, bptt windows,
state carried), runs `build/manylm eval --json` on the same file, and prints both perplexities and
their relative difference. Exit status 1 if they differ by more than 0.1%.
"""
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

from rnn_model import RNNModel


def _module_reader():
    """python/manylm/safetensors.py by path: the package's __init__ needs the compiled module, the reader does not."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python", "manylm", "safetensors.py")
    spec = importlib.util.spec_from_file_location("manylm_safetensors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_safetensors


def read_safetensors(path):
    """{name: torch tensor} of a manylm weights file."""
    return {k: torch.from_numpy(v) for k, v in _module_reader()(path).items()}


def tokenize(path, vocab):
    words, index = vocab["words"], {w: i for i, w in enumerate(vocab["words"])}
    unk = index["<unk>"]
    ids = []
    with open(path, encoding="utf-8-sig", newline=None) as f:
        if vocab["tokens"] == "word":
            for line in f:
                ids += [index.get(w, unk) for w in line.split()] + [index["<eos>"]]
        else:
            ids = [index.get(ch, unk) for ch in f.read()]
    return torch.tensor(ids, dtype=torch.long)


def main():
    run = sys.argv[1]
    cfg = json.load(open(os.path.join(run, "config.json")))
    vocab = json.load(open(os.path.join(run, "vocab.json")))
    text = sys.argv[2] if len(sys.argv) > 2 else (
        cfg["test"] or os.path.join(cfg["data"] or ("data" if os.path.isdir("data") else "../shared/data"),
                                    cfg["corpus"], "test.txt"))
    if cfg["cell"] == "elman" and cfg["activation"] == "sigmoid":
        sys.exit("torch.nn.RNN has no sigmoid nonlinearity: this run cannot be loaded into RNNModel")
    model = RNNModel.from_config({**cfg, "dropout": 0.0}, len(vocab["words"]))
    weights = os.path.join(run, "best.safetensors")
    if not os.path.exists(weights):
        weights = os.path.join(run, "model.safetensors")
    model.load_state_dict(read_safetensors(weights), strict=True)
    model.eval()

    B, T = cfg["eval-batch"], cfg["bptt"]
    data = tokenize(text, vocab)
    L = data.size(0) // B
    data = data[:L * B].view(B, L).t().contiguous()  # batchify: (L, B)
    total, count = 0.0, 0
    with torch.no_grad():
        hidden = model.init_hidden(B)
        for i in range(0, L - 1, T):
            n = min(T, L - 1 - i)
            loss, hidden = model.nll(data[i:i + n], hidden, data[i + 1:i + 1 + n], reduction="sum")
            total += loss.item()
            count += n * B
    ppl_torch = math.exp(total / count)

    manylm = os.environ.get("MANYLM", "build/manylm")
    res = subprocess.run([manylm, "eval", "--model", run, "--text", text, "--json"], capture_output=True, text=True,
                         check=True)
    ppl_manylm = json.loads(res.stdout)["perplexity"]
    rel = abs(ppl_torch - ppl_manylm) / ppl_manylm
    print(json.dumps({"text": text, "pytorch_ppl": ppl_torch, "manylm_ppl": ppl_manylm, "relative_difference": rel,
                      "weights": weights, "torch": torch.__version__}))
    sys.exit(0 if rel <= 1e-3 else 1)


if __name__ == "__main__":
    main()
