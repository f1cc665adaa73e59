#!/usr/bin/env python3
"""The Python module's step against the same step in PyTorch: B lanes, one token each, log-probabilities over the
vocabulary returned as numpy (conversion included), state carried; alternating, medians of REPEATS runs of STEPS
steps each, same threads, same weights.

    PYTHONPATH=build/python $(bash bench/peers/setup_venv.sh) bench/rescore/step_bench.py RUN [--lanes 20]
        [--steps 200] [--repeats 5] [--threads 2]

PyTorch's step: RNNModel (bench/peers/rnn_model.py) embedding → nn.LSTM/GRU/RNN over one step → decoder →
log_softmax (an adaptive softmax: its log_prob), .numpy(). Prints one JSON line; also checks both give the same
log-probabilities (largest absolute difference).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
import manylm  # noqa: E402
from rescore_common import load_run  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--lanes", type=int, default=20)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    m = manylm.load(a.run, threads=a.threads)
    model, words = load_run(a.run)
    V, B = len(words), a.lanes
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, V, size=(a.steps, B))

    def run_manylm():
        state, out = m.initial_state(B), None
        t0 = time.perf_counter()
        for t in range(a.steps):
            out, state = m.step(tokens[t], state)
        return time.perf_counter() - t0, out

    def run_torch():
        hidden, out = model.init_hidden(B), None
        t0 = time.perf_counter()
        with torch.no_grad():
            for t in range(a.steps):
                x = torch.from_numpy(tokens[t]).view(1, B)
                y, hidden = model.rnn(model.encoder(x), hidden)
                if model.adaptive:
                    out = model.decoder.log_prob(y.view(B, -1)).numpy()
                else:
                    out = torch.log_softmax(model.decoder(y.view(B, -1)), dim=-1).numpy()
        return time.perf_counter() - t0, out

    times = {"manylm": [], "torch": []}
    for _ in range(a.repeats):
        tm, om = run_manylm()
        tt, ot = run_torch()
        times["manylm"].append(tm)
        times["torch"].append(tt)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"lanes": B, "steps": a.steps, "threads": a.threads, "torch": torch.__version__,
                      "steps_per_s": {k: a.steps / v for k, v in med.items()},
                      "ratio": med["torch"] / med["manylm"], "all_seconds": times,
                      "largest_abs_difference": float(np.abs(om - ot).max())}))


if __name__ == "__main__":
    main()
