"""A manylm run as ONNX graphs (needs the `onnx` package; onnxruntime for --int8), built from model.safetensors'
tensors directly (no PyTorch):

    python -m manylm.export_onnx RUN OUT.onnx [--weights auto] [--int8]

OUT.onnx        icefall's RNN-LM contract: inputs x (N, L) int64 word ids without sentence start or end, x_lens (N,)
                int64; output nll (N,) float32, −ln p(words, </s>) of each sentence from the start state (manylm eval
                --sentences' score, in nats). Metadata model_type=rnnlm, sos_id, eos_id (both <eos> when the
                vocabulary has no <s>), vocab_size, num_layers, hidden_size, cell.
OUT.state.onnx  one step for shallow fusion: inputs x (N, 1) int64, h0 (L, N, H) (and c0 for an LSTM); outputs
                log_prob (N, V) float32 and next_h0 (and next_c0).
--int8          also OUT.int8.onnx and OUT.state.int8.onnx: onnxruntime's dynamic quantization (int8 weights of the
                embedding, the recurrent layers and the output layer).
Cells: LSTM, GRU (PyTorch's, linear_before_reset), Elman (tanh or relu); output: full or adaptive softmax.
"""
import argparse
import json
import os
import sys

import numpy as np

from .safetensors import read_safetensors

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # pragma: no cover
    sys.exit("manylm.export_onnx: needs the onnx package (pip install onnx onnxruntime)")

OPSET = 17


def weights_path(run, weights):
    names = {"best": "best.safetensors", "average": "average.safetensors", "last": "model.safetensors"}
    if weights == "auto":
        for f in ("best.safetensors", "average.safetensors", "model.safetensors"):
            if os.path.exists(os.path.join(run, f)):
                return os.path.join(run, f)
    return os.path.join(run, names[weights]) if weights in names else weights


class Graph:
    """Nodes and initializers of one graph, with fresh names."""

    def __init__(self, w):
        self.w, self.nodes, self.inits, self.k = w, [], [], 0

    def name(self, base):
        self.k += 1
        return f"{base}_{self.k}"

    def const(self, value, base="c", dtype=None):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), n))
        return n

    def op(self, kind, inputs, n_out=1, **attrs):
        outs = [self.name(kind.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(kind, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else outs


def gates(w, cell, k):
    """PyTorch's layer-k weights in ONNX's gate order: W (1, G·H, In), R (1, G·H, H), B (1, 2·G·H)."""
    wi, wh = w[f"rnn.weight_ih_l{k}"], w[f"rnn.weight_hh_l{k}"]
    bi, bh = w[f"rnn.bias_ih_l{k}"], w[f"rnn.bias_hh_l{k}"]
    H = wh.shape[1]
    order = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "elman": [0]}[cell]  # torch ifgo → onnx iofc; rzn → zrh
    re = lambda m: np.concatenate([m[g * H:(g + 1) * H] for g in order])
    return re(wi)[None], re(wh)[None], np.concatenate([re(bi), re(bh)])[None]


def recurrent(g, cfg, X, h0s=None, c0s=None):
    """The L layers over X (T, N, E); with initial states (lists of (1, N, H) names), also the final ones."""
    cell, H = cfg["cell"], cfg["hidden"]
    kind = {"lstm": "LSTM", "gru": "GRU", "elman": "RNN"}[cell]
    attrs = {"hidden_size": H}
    if cell == "gru":
        attrs["linear_before_reset"] = 1
    if cell == "elman":
        attrs["activations"] = ["Relu" if cfg.get("activation") == "relu" else "Tanh"]
    hs, cs = [], []
    for k in range(cfg["layers"]):
        W, R, B = gates(g.w, cell, k)
        ins = [X, g.const(W, "W"), g.const(R, "R"), g.const(B, "B"), ""]
        if h0s is not None:
            ins.append(h0s[k])
            if cell == "lstm":
                ins.append(c0s[k])
        outs = g.op(kind, ins, n_out=3 if cell == "lstm" else 2, **attrs)
        X = g.op("Squeeze", [outs[0], g.const([1], "axes", np.int64)])  # (T, 1, N, H) → (T, N, H)
        hs.append(outs[1])
        if cell == "lstm":
            cs.append(outs[2])
    return X, hs, cs


def log_probs(g, cfg, Y):
    """log p(w) for every word, (..., V), from the top layer's output Y (..., H)."""
    w = g.w
    if cfg.get("output", "full") != "adaptive":
        z = g.op("Add", [g.op("MatMul", [Y, g.const(w["decoder.weight"].T.copy(), "dec")]), g.const(w["decoder.bias"])])
        return g.op("LogSoftmax", [z], axis=-1)
    head = g.op("MatMul", [Y, g.const(w["decoder.head.weight"].T.copy(), "head")])
    if "decoder.head.bias" in w:
        head = g.op("Add", [head, g.const(w["decoder.head.bias"])])
    head = g.op("LogSoftmax", [head], axis=-1)
    cutoffs = [int(c) for c in (cfg["cutoffs"] if isinstance(cfg["cutoffs"], list) else cfg["cutoffs"].split(","))]
    C1 = cutoffs[0]
    sl = lambda x, a, b: g.op("Slice", [x, g.const([a], "s", np.int64), g.const([b], "e", np.int64),
                                        g.const([-1], "ax", np.int64)])
    parts = [sl(head, 0, C1)]
    for i in range(len(cutoffs)):
        p = g.op("MatMul", [Y, g.const(w[f"decoder.tail.{i}.0.weight"].T.copy(), "proj")])
        z = g.op("LogSoftmax", [g.op("MatMul", [p, g.const(w[f"decoder.tail.{i}.1.weight"].T.copy(), "out")])],
                 axis=-1)
        parts.append(g.op("Add", [z, sl(head, C1 + i, C1 + i + 1)]))
    return g.op("Concat", parts, axis=-1)


def nll_graph(w, cfg, eos):
    g = Graph(w)
    N = g.op("Gather", [g.op("Shape", ["x"]), g.const(0, "zero", np.int64)])
    col = g.op("Unsqueeze", [N, g.const([0], "axes", np.int64)])
    shape = g.op("Concat", [col, g.const([1], "one", np.int64)], axis=0)  # (N, 1)
    sos = g.op("Expand", [g.const(np.array([[eos]], np.int64), "sos"), shape])
    inp = g.op("Concat", [sos, "x"], axis=1)  # (N, L + 1): <s> + words
    zero = g.op("Expand", [g.const(np.array([[0]], np.int64), "pad"), shape])
    tgt = g.op("Concat", ["x", zero], axis=1)  # words + padding
    L1 = g.op("Shape", [inp], start=1, end=2)
    pos = g.op("Unsqueeze", [g.op("Range", [g.const(0, "r0", np.int64), g.op("Squeeze", [L1]),
                                            g.const(1, "r1", np.int64)]), g.const([0], "axes", np.int64)])
    lens = g.op("Unsqueeze", ["x_lens", g.const([1], "axes", np.int64)])  # (N, 1)
    tgt = g.op("Where", [g.op("Equal", [pos, lens]), g.const(np.array(eos, np.int64), "eos"), tgt])  # </s> at x_lens
    valid = g.op("Cast", [g.op("Less", [pos, g.op("Add", [lens, g.const(np.array(1, np.int64), "one")])])],
                 to=TensorProto.FLOAT)  # (N, L + 1)
    X = g.op("Gather", [g.const(w["encoder.weight"], "emb"), g.op("Transpose", [inp], perm=[1, 0])])  # (T, N, E)
    Y, _, _ = recurrent(g, cfg, X)
    lp = log_probs(g, cfg, Y)  # (T, N, V)
    picked = g.op("GatherElements", [lp, g.op("Unsqueeze", [g.op("Transpose", [tgt], perm=[1, 0]),
                                                             g.const([2], "axes", np.int64)])], axis=2)
    picked = g.op("Squeeze", [picked, g.const([2], "axes", np.int64)])  # (T, N)
    masked = g.op("Mul", [picked, g.op("Transpose", [valid], perm=[1, 0])])
    total = g.op("ReduceSum", [masked, g.const([0], "axes", np.int64)], keepdims=0)
    g.nodes.append(helper.make_node("Neg", [total], ["nll"]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", "L"]),
              helper.make_tensor_value_info("x_lens", TensorProto.INT64, ["N"])]
    outputs = [helper.make_tensor_value_info("nll", TensorProto.FLOAT, ["N"])]
    return helper.make_graph(g.nodes, "manylm_rnnlm", inputs, outputs, g.inits)


def state_graph(w, cfg):
    g = Graph(w)
    lstm, L = cfg["cell"] == "lstm", cfg["layers"]
    layer = lambda s, k: g.op("Slice", [s, g.const([k], "s", np.int64), g.const([k + 1], "e", np.int64),
                                        g.const([0], "ax", np.int64)])  # (1, N, H)
    h0s = [layer("h0", k) for k in range(L)]
    c0s = [layer("c0", k) for k in range(L)] if lstm else None
    X = g.op("Gather", [g.const(w["encoder.weight"], "emb"), g.op("Transpose", ["x"], perm=[1, 0])])  # (1, N, E)
    Y, hs, cs = recurrent(g, cfg, X, h0s, c0s)
    lp = log_probs(g, cfg, g.op("Squeeze", [Y, g.const([0], "axes", np.int64)]))  # (N, V)
    g.nodes.append(helper.make_node("Identity", [lp], ["log_prob"]))
    g.nodes.append(helper.make_node("Concat", hs, ["next_h0"], axis=0))
    H, V = cfg["hidden"], w["encoder.weight"].shape[0]
    inputs = [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 1]),
              helper.make_tensor_value_info("h0", TensorProto.FLOAT, [L, "N", H])]
    outputs = [helper.make_tensor_value_info("log_prob", TensorProto.FLOAT, ["N", V]),
               helper.make_tensor_value_info("next_h0", TensorProto.FLOAT, [L, "N", H])]
    if lstm:
        g.nodes.append(helper.make_node("Concat", cs, ["next_c0"], axis=0))
        inputs.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, [L, "N", H]))
        outputs.append(helper.make_tensor_value_info("next_c0", TensorProto.FLOAT, [L, "N", H]))
    return helper.make_graph(g.nodes, "manylm_rnnlm_step", inputs, outputs, g.inits)


def save(graph, path, meta):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="manylm")
    model.ir_version = 8
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=str(v))
    onnx.checker.check_model(model)
    onnx.save(model, path)


def quantize(src, dst, meta):
    import contextlib
    import io
    from onnxruntime.quantization import QuantType, quantize_dynamic
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its graph analysis
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
    model = onnx.load(dst)  # quantize_dynamic keeps the graph's metadata only on recent versions: set it again
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=str(v))
    onnx.save(model, dst)


def export(run, out, weights="auto", int8=False):
    cfg = json.load(open(os.path.join(run, "config.json")))
    words = json.load(open(os.path.join(run, "vocab.json")))["words"]
    if cfg["cell"] == "elman" and cfg.get("activation", "tanh") not in ("tanh", "relu"):
        raise SystemExit(f"{run}: ONNX's RNN has no {cfg['activation']} activation")
    if "<eos>" not in words:
        raise SystemExit(f"{run}: needs a word-level model (sentences end with <eos>)")
    w = read_safetensors(weights_path(run, weights))
    if cfg.get("tied") and "decoder.weight" not in w:
        w["decoder.weight"] = w["encoder.weight"]
    eos = words.index("<eos>")
    sos = words.index("<s>") if "<s>" in words else eos
    meta = {"model_type": "rnnlm", "version": "1", "model_author": "manylm", "sos_id": sos, "eos_id": eos,
            "vocab_size": len(words), "num_layers": cfg["layers"], "hidden_size": cfg["hidden"], "cell": cfg["cell"],
            "comment": "x, x_lens -> nll; x has no sentence start or end"}
    base = out[:-5] if out.endswith(".onnx") else out
    paths = [out, base + ".state.onnx"]
    save(nll_graph(w, cfg, sos), paths[0], meta)
    save(state_graph(w, cfg), paths[1], {**meta, "comment": "x (N, 1), h0[, c0] -> log_prob (N, V), next states"})
    if int8:
        for p in list(paths[:2]):
            q = p[:-5] + ".int8.onnx"
            quantize(p, q, meta)
            paths.append(q)
    return paths


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--weights", default="auto", help="auto, best, average, last, or a weights file")
    p.add_argument("--int8", action="store_true", help="also the int8 dynamically quantized graphs")
    a = p.parse_args()
    for path in export(a.run, a.out, a.weights, a.int8):
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
