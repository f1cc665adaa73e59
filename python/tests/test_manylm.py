"""The Python module against the manylm binary on tiny runs trained here: score equals `eval --sentences`, perplexity
equals `eval`, step's log-probabilities are `eval --per-word`'s and normalized, sample equals `manylm sample`, for
an LSTM, a GRU and an Elman RNN (adaptive softmax too); calls release the GIL, are safe from several threads on their
own states, bad arguments raise ValueError, and MPI is never initialized. ctest runs it (PYTHONPATH=build/python,
MANYLM_BINARY=the binary)."""
import ctypes
import json
import math
import os
import subprocess
import threading
import time

import numpy as np
import pytest

import manylm

BINARY = os.environ.get("MANYLM_BINARY", "build/manylm")
WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "house", "big", "small"]


def corpus(n, seed):
    x, lines, count = seed, [], 0
    while count < n:
        x = (x * 1664525 + 1013904223) % 2**32
        k = 3 + (x >> 16) % 7
        line = []
        for _ in range(k):
            x = (x * 1664525 + 1013904223) % 2**32
            line.append(WORDS[(x >> 16) % len(WORDS)])
        lines.append(" ".join(line))
        count += k
    return "\n".join(lines) + "\n"


def manylm_cli(*args):
    r = subprocess.run([BINARY, *args], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    return r.stdout


def write_corpus(d):
    """train.txt, valid.txt and test.txt of the tiny corpus in folder d; returns d."""
    for name, n, seed in (("train.txt", 600, 1), ("valid.txt", 150, 2), ("test.txt", 200, 3)):
        (d / name).write_text(corpus(n, seed))
    return d


def train_tiny(data, out, *options):
    """A 2-layer model of 10 hidden units trained one epoch on the tiny corpus in `data`, into run directory `out`."""
    manylm_cli("train", "--train", str(data / "train.txt"), "--valid", str(data / "valid.txt"), "--test",
               str(data / "test.txt"), "--hidden", "10", "--embed", "8", "--layers", "2", "--batch", "2", "--bptt", "5",
               "--epochs", "1", "--threads", "1", "--eval-batch", "3", "--cache-dir", str(data / "cache"), "--out",
               str(out), *options)


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


RUNS = {"lstm": [], "gru": [], "elman": [], "lstm-adaptive": ["--cell", "lstm", "--output", "adaptive",
                                                               "--cutoffs", "4,9", "--div-value", "2"]}


@pytest.fixture(scope="session", params=list(RUNS))
def run(request, data):
    name = request.param
    out = data / ("run-" + name)
    if not out.exists():
        train_tiny(data, out, *(RUNS[name] or ["--cell", name]))
    return out


def test_score_equals_eval_sentences(run, data, tmp_path):
    m = manylm.load(run, threads=1)
    lines = (data / "test.txt").read_text().splitlines()[:40] + ["", "the zzzunknown cat"]
    text = tmp_path / "s.txt"
    text.write_text("\n".join(lines) + "\n")
    manylm_cli("eval", "--model", str(run), "--text", str(text), "--sentences", str(tmp_path / "out.txt"))
    ref = [float(v) for v in (tmp_path / "out.txt").read_text().split()]
    got = m.score(lines)
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert abs(g - r) <= max(1e-5 * abs(r), 2e-6), (g, r)


def test_perplexity_equals_eval(run, data):
    m = manylm.load(run, threads=1)
    ref = json.loads(manylm_cli("eval", "--model", str(run), "--text", str(data / "test.txt"), "--json"))
    assert abs(m.perplexity((data / "test.txt").read_text()) - ref["perplexity"]) <= 1e-5 * ref["perplexity"]
    ref2 = json.loads(manylm_cli("eval", "--model", str(run), "--text", str(data / "test.txt"), "--json",
                                 "--batch", "1", "--bptt", "7"))
    got2 = m.perplexity((data / "test.txt").read_text(), batch=1, bptt=7)
    assert abs(got2 - ref2["perplexity"]) <= 1e-5 * ref2["perplexity"]


def test_step_gives_eval_per_word_log_probs(run, tmp_path):
    m = manylm.load(run, threads=1)
    sentence = "the cat sat on a big mat"
    (tmp_path / "one.txt").write_text(sentence + "\n")
    manylm_cli("eval", "--model", str(run), "--text", str(tmp_path / "one.txt"), "--per-word", str(tmp_path / "pw"))
    ref = [float(l.split("\t")[1]) for l in (tmp_path / "pw").read_text().splitlines()]
    index = {w: i for i, w in enumerate(m.vocab)}
    ids = [index[w] for w in sentence.split()] + [m.eos]
    B = 20  # lane 3 scores the sentence; the others are fed other tokens and must not disturb it
    state = m.initial_state(B)
    assert state.shape == ((2 if m.cell == "lstm" else 1), m.layers, B, m.hidden)
    prev = [m.start] * B
    for t, target in enumerate(ids):
        logp, state = m.step(np.array(prev), state)
        assert logp.shape == (B, len(m.vocab)) and logp.dtype == np.float32
        assert np.allclose(np.exp(logp.astype(np.float64)).sum(1), 1.0, atol=1e-5)
        assert abs(logp[3, target] - ref[t]) <= max(1e-5 * abs(ref[t]), 2e-6), (t, logp[3, target], ref[t])
        prev = [(t + b) % len(m.vocab) for b in range(B)]
        prev[3] = target


def test_sample_equals_manylm_sample(run):
    m = manylm.load(run, threads=1)
    ref = manylm_cli("sample", "--model", str(run), "--prompt", "the cat", "--length", "15", "--seed", "5",
                     "--top-k", "4", "--temperature", "0.8")
    assert m.sample("the cat", length=15, temperature=0.8, top_k=4, seed=5) == ref[:-1]


def test_bad_arguments_raise_value_error(run):
    m = manylm.load(run, threads=1)
    with pytest.raises(ValueError):
        m.step(np.array([0, 1]), m.initial_state(3))
    with pytest.raises(ValueError):
        m.step(np.array([len(m.vocab)]), m.initial_state(1))
    with pytest.raises(ValueError):
        m.initial_state(0)
    with pytest.raises(ValueError):
        m.sample(length=0)
    with pytest.raises(ValueError, match="no-such-run"):
        manylm.load(str(run) + "/no-such-run")


def test_threads_and_the_gil(run, data):
    m = manylm.load(run, threads=1)
    tokens = [[(7 * k + t) % len(m.vocab) for t in range(30)] for k in range(4)]

    def walk(k, out):
        state = m.initial_state(5)
        total = np.zeros(5)
        for t in tokens[k]:
            logp, state = m.step(np.full(5, t), state)
            total += logp[:, (t + 1) % len(m.vocab)]
        out[k] = total

    alone, together = {}, {}
    for k in range(4):
        walk(k, alone)
    threads = [threading.Thread(target=walk, args=(k, together)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for k in range(4):
        assert np.array_equal(alone[k], together[k])
    # While one thread computes, another runs Python: the GIL is released.
    # The call must be long enough to watch: the text grows until it takes 0.1 s (a fast machine needs more).
    base = (data / "train.txt").read_text()
    for repeat in (40, 160, 640, 2560):
        text = base * repeat
        span, ticks = {}, []

        def long_call():
            span["start"] = time.perf_counter()
            m.perplexity(text)
            span["end"] = time.perf_counter()

        worker = threading.Thread(target=long_call)
        worker.start()
        while worker.is_alive():
            ticks.append(time.perf_counter())
        worker.join()
        length = span["end"] - span["start"]
        if length > 0.1:
            break
    inside = [t for t in ticks if span["start"] + 0.2 * length < t < span["end"] - 0.2 * length]
    assert length > 0.05 and len(inside) > 10, (length, len(inside))


def test_mpi_is_never_initialized(run):
    m = manylm.load(run, threads=1)
    m.score(["the cat"])
    m.perplexity("the cat sat\n" * 20)
    m.step(np.array([m.start]), m.initial_state(1))
    libs = {l.split()[-1] for l in open("/proc/self/maps") if "libmpi.so" in l}
    for lib in libs:
        flag = ctypes.c_int(-1)
        assert ctypes.CDLL(lib).MPI_Initialized(ctypes.byref(flag)) == 0
        assert flag.value == 0, lib
