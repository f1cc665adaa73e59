#!/usr/bin/python3
"""Writes the PyTorch golden files the C++ golden test compares against (tests/golden_test.cc).

Run by hand with Debian's python3-torch (not in CI):  /usr/bin/python3 tests/golden/make_golden.py
For the Elman cell with each activation nn.RNN offers (tanh, relu), nn.LSTM and nn.GRU it builds the
tiny 2-layer model of pytorch/examples word_language_model (encoder → RNN → decoder), and, as
lstm_adaptive, the LSTM one with nn.AdaptiveLogSoftmaxWithLoss as the decoder (two tail clusters, head
bias; manylm's --output adaptive), and records in <name>.bin (elman_tanh, elman_relu, lstm, gru, lstm_adaptive):
every weight (state_dict names), the inputs, targets and initial hidden state, the loss and the
gradient of every weight for one window, then the losses of 5 SGD steps (global-norm clipping) over
5 consecutive windows with the hidden state carried (detached) between them. lstm_adaptive also holds the
decoder's settings: int:cutoffs (n,), div_value (1,) and int:head_bias (1,); the script stops unless
every tail cluster has targets in each of its windows (so every tail weight is tested).

Objective, as manylm's: sum over the T steps of the mean over the B lanes of the cross-entropy.
File format (little endian): b"MLMGOLD1", u32 count, then per tensor: u32 name length, name bytes,
u32 ndim, i64 dims[ndim], f32 data (i32 for names starting with "int:").
"""
import os
import struct
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "peers"))
from rnn_model import RNNModel  # noqa: E402

V, E, H, L, T, B, STEPS = 17, 6, 5, 2, 4, 3, 5
LR, CLIP = 0.5, 0.8
# lstm_adaptive: head = words [0, 5) + 2 cluster logits; tails [5, 11) and [11, 17) through H // 2 and H // 4
# (H_ADAPTIVE = 8: projections of 4 and 2 units).
CUTOFFS, DIV_VALUE, H_ADAPTIVE = [5, 11], 2.0, 8


def objective(model, x, h, y):
    # Σ_t mean_b CE  ==  mean over T·B of CE, times T
    loss, h = model.nll(x, h, y)
    return loss * T, h


def write(path, tensors):
    with open(path, "wb") as f:
        f.write(b"MLMGOLD1")
        f.write(struct.pack("<I", len(tensors)))
        for name, t in tensors:
            t = t.detach().contiguous()
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack(f"<{t.dim()}q", *t.shape))
            arr = t.to(torch.int32) if name.startswith("int:") else t.to(torch.float32)
            f.write(arr.numpy().tobytes())


def clusters_hit(y):
    """Which tail clusters the targets y fall in."""
    return {sum(int(w) >= c for c in CUTOFFS) - 1 for w in y.reshape(-1)} - {-1}


def make_case(outdir, name, cell, act, seed, adaptive):
    g = torch.Generator().manual_seed(seed)
    hid = H_ADAPTIVE if adaptive else H
    extra = dict(output="adaptive", cutoffs=CUTOFFS, div_value=DIV_VALUE, head_bias=True) if adaptive else {}
    model = RNNModel(cell, V, E, hid, L, nonlinearity=act, **extra)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g) * 0.6 - 0.3)
    seq = torch.randint(0, V, (B, STEPS * T + 1), generator=g)  # B lanes
    h0 = torch.rand(L, B, hid, generator=g) * 0.8 - 0.4
    c0 = torch.rand(L, B, hid, generator=g) * 0.8 - 0.4
    state0 = (h0, c0) if cell == "lstm" else h0
    tensors = [(k, v.clone()) for k, v in model.state_dict().items()]

    x = seq[:, :T].t().contiguous()       # (T, B), time-major
    y = seq[:, 1:T + 1].t().contiguous()
    loss, _ = objective(model, x, state0, y)
    model.zero_grad()
    loss.backward()
    tensors += [("int:x", x), ("int:y", y), ("h0", h0), ("loss", loss.reshape(1))]
    if cell == "lstm":
        tensors.append(("c0", c0))
    if adaptive:
        tensors += [("int:cutoffs", torch.tensor(CUTOFFS)), ("div_value", torch.tensor([DIV_VALUE])),
                    ("int:head_bias", torch.tensor([1]))]
    # A tail cluster without targets has no gradient in PyTorch (None): zero, as manylm's.
    tensors += [("grad." + k, p.grad.clone() if p.grad is not None else torch.zeros_like(p))
                for k, p in model.named_parameters()]

    # 5 SGD steps over consecutive windows, state carried and detached, as manylm trains.
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    h = tuple(v.clone() for v in state0) if cell == "lstm" else h0.clone()
    losses, xs, ys = [], [], []
    for s in range(STEPS):
        xw = seq[:, s * T:(s + 1) * T].t().contiguous()
        yw = seq[:, s * T + 1:(s + 1) * T + 1].t().contiguous()
        if adaptive and clusters_hit(yw) != set(range(len(CUTOFFS))):
            sys.exit(f"{name}: window {s} leaves a tail cluster without targets; pick another seed")
        opt.zero_grad()
        l, h = objective(model, xw, h, yw)
        h = tuple(v.detach() for v in h) if cell == "lstm" else h.detach()
        l.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        losses.append(l.item())
        xs.append(xw)
        ys.append(yw)
    tensors += [("int:steps.x", torch.stack(xs)), ("int:steps.y", torch.stack(ys)),
                ("steps.loss", torch.tensor(losses)), ("steps.lr", torch.tensor([LR])),
                ("steps.clip", torch.tensor([CLIP]))]
    tensors += [("after." + k, v.clone()) for k, v in model.state_dict().items()]
    write(f"{outdir}/{name}.bin", tensors)
    print(f"{name}.bin: loss {loss.item():.6f}, step losses {[round(v, 6) for v in losses]}")


def main(outdir):
    cases = {"elman_tanh": ("elman", "tanh", 1234, False), "elman_relu": ("elman", "relu", 4321, False),
             "lstm": ("lstm", "tanh", 1111, False), "gru": ("gru", "tanh", 2222, False),
             "lstm_adaptive": ("lstm", "tanh", 3333, True)}
    for name, (cell, act, seed, adaptive) in cases.items():
        make_case(outdir, name, cell, act, seed, adaptive)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/golden")
