#!/usr/bin/env python3
"""Perplexity of a text under graphs written by `python -m manylm.export_onnx`, with onnxruntime:

    python bench/rescore/onnx_ppl.py RUN OUT.onnx TEXT [--sentences N]

nll graph: each line a sentence from the start state (x, x_lens → nll), perplexity exp(Σ nll / Σ (words + 1)): what
`manylm eval --sentences` prints. State graph (OUT.state.onnx): the text as one stream fed token by token from the zero
state, each token predicting the next: what `manylm eval --batch 1` prints. Prints one JSON line (the int8 graphs
too when OUT.int8.onnx exists) with the file sizes.
"""
import json
import math
import os
import sys

import numpy as np
import onnxruntime as ort


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = int(os.environ.get("ORT_THREADS", "1"))
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def sentences_ids(text, words, n=None):
    index = {w: i for i, w in enumerate(words)}
    unk = index["<unk>"]
    lines = [l.split() for l in open(text, encoding="utf-8")][:n]
    return [[index.get(w, unk) for w in l] for l in lines]


def nll_perplexity(path, sents, batch=64):
    s = session(path)
    total, count, per = 0.0, 0, []
    for i in range(0, len(sents), batch):
        chunk = sents[i:i + batch]
        L = max(1, max(len(c) for c in chunk))
        x = np.zeros((len(chunk), L), np.int64)
        for b, c in enumerate(chunk):
            x[b, :len(c)] = c
        nll = s.run(["nll"], {"x": x, "x_lens": np.array([len(c) for c in chunk], np.int64)})[0]
        per += nll.tolist()
        total += float(nll.astype(np.float64).sum())
        count += sum(len(c) + 1 for c in chunk)
    return math.exp(total / count), per


def stream_perplexity(path, ids, meta):
    s = session(path)
    names = [i.name for i in s.get_inputs()]
    L, H = int(meta["num_layers"]), int(meta["hidden_size"])
    state = {n: np.zeros((L, 1, H), np.float32) for n in names if n != "x"}
    total = 0.0
    for t in range(len(ids) - 1):
        outs = s.run(None, {"x": np.array([[ids[t]]], np.int64), **state})
        total -= float(outs[0][0, ids[t + 1]])
        state = {n: o for n, o in zip([n for n in names if n != "x"], outs[1:])}
    return math.exp(total / (len(ids) - 1))


def main():
    run, out, text = sys.argv[1:4]
    n = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--sentences" else None
    words = json.load(open(os.path.join(run, "vocab.json")))["words"]
    sents = sentences_ids(text, words, n)
    meta = {p.key: p.value for p in __import__("onnx").load(out).metadata_props}
    base = out[:-5]
    res = {"fp32_bytes": os.path.getsize(out), "nll_ppl": nll_perplexity(out, sents)[0]}
    stream = [i for c in sents for i in c + [int(meta["eos_id"])]]
    res["stream_ppl"] = stream_perplexity(base + ".state.onnx", stream, meta)
    if os.path.exists(base + ".int8.onnx"):
        res["int8_bytes"] = os.path.getsize(base + ".int8.onnx")
        res["int8_nll_ppl"] = nll_perplexity(base + ".int8.onnx", sents)[0]
        res["int8_size_ratio"] = res["int8_bytes"] / res["fp32_bytes"]
        res["int8_ppl_rise"] = res["int8_nll_ppl"] / res["nll_ppl"] - 1
    print(json.dumps(res))


if __name__ == "__main__":
    main()
