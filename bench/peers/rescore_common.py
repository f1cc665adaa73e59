"""What the two PyTorch rescoring peers share: a manylm run loaded into pytorch/examples' RNNModel (rnn_model.py) with
the weights `manylm rescore --weights auto` reads, the n-best file read into (key, word ids) with the sentence end
appended, and the output and timing conventions (wall and CPU seconds of the scoring loop). Used by rescore_per_sentence.py and rescore_batched.py.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_in_pytorch import read_safetensors  # noqa: E402
from rnn_model import RNNModel  # noqa: E402


def weights_file(run):
    """manylm's --weights auto: best.safetensors, else average.safetensors, else the checkpoint's model."""
    for name in ("best.safetensors", "average.safetensors", "model.safetensors"):
        if os.path.exists(os.path.join(run, name)):
            return os.path.join(run, name)
    sys.exit(f"{run}: no weights file")


def load_run(run):
    cfg = json.load(open(os.path.join(run, "config.json")))
    vocab = json.load(open(os.path.join(run, "vocab.json")))
    model = RNNModel.from_config({**cfg, "dropout": 0.0}, len(vocab["words"]))
    model.load_state_dict(read_safetensors(weights_file(run)), strict=True)
    model.eval()
    return model, vocab["words"]


def read_nbest(path, words):
    """[(key, utterance, ids)] with ids the words' ids (unknown words: <unk>) and <eos>; the utterance is the key
    up to its last '-' (manylm rescore's default)."""
    index = {w: i for i, w in enumerate(words)}
    unk, eos = index["<unk>"], index["<eos>"]
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            key = parts[0]
            utt = key.rsplit("-", 1)[0] if "-" in key[1:] else key
            out.append((key, utt, [index.get(w, unk) for w in parts[1:]] + [eos]))
    return out, eos


def main(score_all, description):
    """Common command line: RUN NBEST OUT [--threads N]; prints one JSON line with the timing."""
    import argparse
    p = argparse.ArgumentParser(description=description)
    p.add_argument("run")
    p.add_argument("nbest")
    p.add_argument("out", help="KEY cost lines (natural log), as manylm rescore writes")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, words = load_run(a.run)
    hyps, eos = read_nbest(a.nbest, words)
    with torch.no_grad():
        t0, c0 = time.perf_counter(), time.process_time()
        costs = score_all(model, hyps, eos)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    with open(a.out, "w") as f:
        for (key, _, _), c in zip(hyps, costs):
            f.write(f"{key} {c:.6f}\n")
    print(json.dumps({"hypotheses": len(hyps), "seconds": seconds, "hyps_per_s": len(hyps) / seconds,
                      "cpu_seconds": cpu,
                      "threads": a.threads, "torch": torch.__version__}))
