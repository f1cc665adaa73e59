#!/usr/bin/python3
"""Trains a manylm recipe with PyTorch on the CPU: the peer for manylm's quality and speed figures.

    /usr/bin/python3 bench/peers/torch_lm.py RECIPE.json [--updates N] [--threads T] [--data DIR]
                                            [--time-steps N] [--autocast bf16]

Same model as pytorch/examples' word_language_model RNNModel (encoder → nn.RNN/LSTM/GRU → decoder,
nn.AdaptiveLogSoftmaxWithLoss as the decoder when the recipe says "output": "adaptive"; Zaremba dropout
after the embedding, between layers and before the decoder), same data layout (B contiguous streams, bptt
windows, hidden state carried and detached, reset each epoch), same objective (Σ over the steps of the mean
over the lanes), same init (uniform ±init on every parameter), SGD with global-norm clipping and the
recipe's step schedule (Adam when the recipe says so). Stops after --updates updates (default: the recipe's
epochs), then prints one JSON object: validation perplexity (eval batch and bptt of the recipe), updates,
tokens/s of the training steps, torch version.
--time-steps N: speed only: 3 warm-up steps, then N timed steps, no validation (what
bench/peers/compare.py calls). --autocast bf16: the forward in torch.autocast("cpu", bfloat16), the
fastest CPU setting current PyTorch offers for this model (fp32 master weights, as manylm's bf16).
"""
import argparse
import collections
import contextlib
import json
import math
import os
import time

import torch
import torch.nn as nn

from rnn_model import RNNModel


def read_ids(path, index, tokens):
    with open(path, encoding="utf-8-sig", newline=None) as f:
        if tokens == "word":
            out = []
            for line in f:
                out += [index.get(w, index["<unk>"]) for w in line.split()] + [index["<eos>"]]
            return torch.tensor(out, dtype=torch.long)
        return torch.tensor([index.get(c, index["<unk>"]) for c in f.read()], dtype=torch.long)


def batchify(ids, b):
    n = ids.size(0) // b
    return ids[:n * b].view(b, n).t().contiguous()  # (L, B)


def detach(h):
    return tuple(v.detach() for v in h) if isinstance(h, tuple) else h.detach()


def evaluate(model, data, bptt):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        h = model.init_hidden(data.size(1))
        for i in range(0, data.size(0) - 1, bptt):
            n = min(bptt, data.size(0) - 1 - i)
            loss, h = model.nll(data[i:i + n], h, data[i + 1:i + 1 + n], reduction="sum")
            total += loss.item()
            count += n * data.size(1)
    model.train()
    return math.exp(total / count)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe")
    ap.add_argument("--updates", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", default="")
    ap.add_argument("--time-steps", type=int, default=0)
    ap.add_argument("--autocast", choices=["none", "bf16"], default="none")
    a = ap.parse_args()
    cfg = json.load(open(a.recipe))
    defaults = {"dropout": 0.0, "tied": False, "activation": "tanh", "optimizer": "sgd", "decay": 1.0,
                "decay-after": 0, "clip": 5.0, "eval-batch": 10, "tokens": "word", "seed": 1}
    cfg = {**defaults, **cfg}
    if a.autocast == "bf16" and cfg.get("output", "full") == "adaptive":
        # torch 1.13's AdaptiveLogSoftmaxWithLoss.forward index_copy_s bf16 log-probs into a float32 buffer.
        ap.error("--autocast bf16: not with an adaptive softmax (nn.AdaptiveLogSoftmaxWithLoss fails under autocast)")
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(cfg["seed"])
    root = a.data or ("data" if os.path.isdir("data") else "../shared/data")
    train_path, valid_path = (os.path.join(root, cfg["corpus"], f) for f in ("train.txt", "valid.txt"))
    counts = collections.Counter()
    with open(train_path, encoding="utf-8-sig") as f:
        for line in f:
            counts.update(line.split() + ["<eos>"])
    counts.setdefault("<unk>", 0)
    index = {w: i for i, (w, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}
    train = batchify(read_ids(train_path, index, cfg["tokens"]), cfg["batch"])
    valid = batchify(read_ids(valid_path, index, cfg["tokens"]), cfg["eval-batch"])
    model = RNNModel.from_config(cfg, len(index))
    for w in model.parameters():
        nn.init.uniform_(w, -cfg["init"], cfg["init"])
    T = cfg["bptt"]
    opt = (torch.optim.Adam(model.parameters(), lr=cfg["lr"]) if cfg["optimizer"] == "adam"
           else torch.optim.SGD(model.parameters(), lr=cfg["lr"]))
    updates, tokens, seconds = 0, 0, 0.0
    warmup = 3 if a.time_steps else 0
    limit = warmup + a.time_steps if a.time_steps else (a.updates or 10 ** 12)
    cast = (torch.autocast("cpu", dtype=torch.bfloat16) if a.autocast == "bf16"
            else contextlib.nullcontext())
    for epoch in range(1, cfg["epochs"] + 1):
        if cfg["schedule"] == "step":
            for g in opt.param_groups:
                g["lr"] = cfg["lr"] / cfg["decay"] ** max(0, epoch - cfg["decay-after"])
        h = model.init_hidden(cfg["batch"])
        for i in range(0, train.size(0) - 1, T):
            t0 = time.perf_counter()
            n = min(T, train.size(0) - 1 - i)
            h = detach(h)
            opt.zero_grad()
            with cast:
                loss, h = model.nll(train[i:i + n], h, train[i + 1:i + 1 + n])  # scored in float32
                loss = loss * n
            loss.backward()
            if cfg["clip"] > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
            opt.step()
            h = tuple(v.float() for v in h) if isinstance(h, tuple) else h.float()
            if updates >= warmup:
                seconds += time.perf_counter() - t0
                tokens += n * cfg["batch"]
            updates += 1
            if updates >= limit:
                break
        if updates >= limit:
            break
    valid_ppl = None if a.time_steps else evaluate(model, valid, T)
    print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "autocast": a.autocast, "updates": updates, "valid_ppl": valid_ppl,
                      "tokens_per_sec": tokens / seconds, "ms_per_step": 1e3 * seconds / max(1, updates - warmup)}))


if __name__ == "__main__":
    main()
