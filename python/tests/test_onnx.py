"""`python -m manylm.export_onnx` checked with onnxruntime on tiny runs trained here (LSTM, GRU, Elman with ReLU,
LSTM with an adaptive softmax): the nll graph gives `manylm eval --sentences`' scores and perplexity, the stateful
graph stepped over the text gives `manylm eval --batch 1`'s perplexity, both within 1e-4; the metadata is icefall's;
the int8 graphs hold int8 weights and score close. Run by tests/python_onnx.sh with the cached venv (onnx, onnxruntime)."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "rescore"))
import onnx_ppl  # noqa: E402
from test_manylm import manylm_cli, train_tiny, write_corpus  # noqa: E402

RUNS = {"lstm": ["--cell", "lstm"], "gru": ["--cell", "gru"], "elman-relu": ["--cell", "elman", "--activation", "relu"],
        "lstm-adaptive": ["--cell", "lstm", "--output", "adaptive", "--cutoffs", "4,9", "--div-value", "2"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("onnx"))


@pytest.mark.parametrize("name", list(RUNS))
def test_onnx_graphs_score_as_manylm(name, data):
    run = data / ("run-" + name)
    train_tiny(data, run, *RUNS[name])
    out = str(data / (name + ".onnx"))
    r = subprocess.run([sys.executable, "-m", "manylm.export_onnx", str(run), out, "--int8"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    words = json.load(open(run / "vocab.json"))["words"]
    assert meta["model_type"] == "rnnlm" and int(meta["vocab_size"]) == len(words)
    assert int(meta["sos_id"]) == int(meta["eos_id"]) == words.index("<eos>")
    text = data / "test.txt"
    sents = onnx_ppl.sentences_ids(str(text), words)
    ppl, per = onnx_ppl.nll_perplexity(out, sents)
    sent_out = data / (name + ".sent")
    printed = manylm_cli("eval", "--model", str(run), "--text", str(text), "--sentences", str(sent_out), "--json")
    ref = json.loads(printed)["perplexity"]
    assert abs(ppl - ref) <= 1e-4 * ref, (ppl, ref)
    log10 = [float(v) for v in sent_out.read_text().split()]
    assert np.allclose(np.array(per) * -0.4342944819, log10, rtol=1e-4, atol=2e-6)
    stream = [i for c in sents for i in c + [words.index("<eos>")]]
    ref1 = json.loads(manylm_cli("eval", "--model", str(run), "--text", str(text), "--batch", "1", "--json"))
    sppl = onnx_ppl.stream_perplexity(out[:-5] + ".state.onnx", stream, meta)
    assert abs(sppl - ref1["perplexity"]) <= 1e-4 * ref1["perplexity"], (sppl, ref1)
    q = out[:-5] + ".int8.onnx"
    # Weights are int8 (tiny models: the scales' overhead outweighs the bytes saved; sizes are in RESULTS.md).
    assert any(t.data_type == onnx.TensorProto.INT8 for t in onnx.load(q).graph.initializer)
    qppl, _ = onnx_ppl.nll_perplexity(q, sents)
    assert abs(qppl / ppl - 1) < 0.1, (qppl, ppl)
    assert os.path.exists(out[:-5] + ".state.int8.onnx")
