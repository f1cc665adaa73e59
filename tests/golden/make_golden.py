#!/usr/bin/python3
"""Writes the PyTorch golden files the C++ golden test compares against (tests/golden_test.cc).

Run by hand with Debian's python3-torch (not in CI):  /usr/bin/python3 tests/golden/make_golden.py
For the Elman cell with each activation nn.RNN offers (tanh, relu), nn.LSTM and nn.GRU it builds the
tiny 2-layer model of pytorch/examples word_language_model (encoder → RNN → decoder), and records in
<name>.bin (elman_tanh, elman_relu, lstm, gru):
every weight (state_dict names), the inputs, targets and initial hidden state, the loss and the
gradient of every weight for one window, then the losses of 5 SGD steps (global-norm clipping) over
5 consecutive windows with the hidden state carried (detached) between them.

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


def objective(logits, y):
    # Σ_t mean_b CE  ==  mean over T·B of CE, times T
    return nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="mean") * T


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


def main(outdir):
    cases = {"elman_tanh": ("elman", "tanh", 1234), "elman_relu": ("elman", "relu", 4321),
             "lstm": ("lstm", "tanh", 1111), "gru": ("gru", "tanh", 2222)}
    for name, (cell, act, seed) in cases.items():
        g = torch.Generator().manual_seed(seed)
        model = RNNModel(cell, V, E, H, L, nonlinearity=act)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.rand(p.shape, generator=g) * 0.6 - 0.3)
        seq = torch.randint(0, V, (B, STEPS * T + 1), generator=g)  # B lanes
        h0 = torch.rand(L, B, H, generator=g) * 0.8 - 0.4
        c0 = torch.rand(L, B, H, generator=g) * 0.8 - 0.4
        state0 = (h0, c0) if cell == "lstm" else h0
        tensors = [(k, v.clone()) for k, v in model.state_dict().items()]

        x = seq[:, :T].t().contiguous()       # (T, B), time-major
        y = seq[:, 1:T + 1].t().contiguous()
        logits, _ = model(x, state0)
        loss = objective(logits, y)
        model.zero_grad()
        loss.backward()
        tensors += [("int:x", x), ("int:y", y), ("h0", h0), ("loss", loss.reshape(1))]
        if cell == "lstm":
            tensors.append(("c0", c0))
        tensors += [("grad." + k, p.grad.clone()) for k, p in model.named_parameters()]

        # 5 SGD steps over consecutive windows, state carried and detached, as manylm trains.
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        h = tuple(v.clone() for v in state0) if cell == "lstm" else h0.clone()
        losses, xs, ys = [], [], []
        for s in range(STEPS):
            xw = seq[:, s * T:(s + 1) * T].t().contiguous()
            yw = seq[:, s * T + 1:(s + 1) * T + 1].t().contiguous()
            opt.zero_grad()
            out, h = model(xw, h)
            h = tuple(v.detach() for v in h) if cell == "lstm" else h.detach()
            l = objective(out, yw)
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


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/golden")
