#!/usr/bin/env python3
"""reliability.py — issue 21's hostile trials, repeated against a manylm binary; prints a table (or --json).

Every trial runs the real program on a tiny LSTM (1x32, 2,000 words) over a slice of PTB, and is judged from
outside, by exit status, stderr and the files left on disk:
  kill9      a run killed with SIGKILL at a random moment, then resumed (`--resume`, or started again when nothing
             resumable was left): the end result bit-identical to an uninterrupted run (weights, state tensors,
             training state but its clock)
  mutation   a checkpoint damaged one way or another (bytes, shapes, offsets, NaN, state fields, vocabulary, config,
             leftovers of a save): `eval` and `train --resume` each exit 2 with one line and change nothing, or
             load it and give exactly the undamaged run's perplexity / continuation (10 steps, then compared)
  corpus     odd corpus files (binary, empty, a huge line, invalid UTF-8, CR-only, ...): exit 0 where the text is
             readable, else exit 2 with one line naming the file and no run directory left behind
  writers    two trainers of different models started 0-0.15 s apart on one --out, and a --resume of a live run:
             one of them refused with one line, the directory whole (eval loads it)
  diskfull   the run directory on a tmpfs of several sizes: exit 0 or 2 with one line, no temporary files left,
             no half-made run; a checkpoint that was written is intact (eval and --resume work on a copy)
  diverge    --lr 1e6 --clip 0 and kin: nothing non-finite or exploded is written (every weights file finite, eval
             perplexity finite and below 10x the vocabulary); exit 0 after rollbacks or exit 2 with one line
A trial that does not meet its rule is a FAIL in the table, with the reason. Exit status: 0 when every trial
passed, 1 otherwise. Needs root for the tmpfs mounts of diskfull (skipped otherwise, and said so).

Usage: bench/reliability/reliability.py [--manylm build/manylm] [--data ../shared/data] [--seed 1] [--json]
       [--only kill9,mutation,...] [--kill N] [--work DIR] [--keep]
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

V = 2000  # vocabulary of the tiny model
TINY = {"cell": "lstm", "hidden": "32", "embed": "32", "vocab-size": str(V), "batch": "8", "bptt": "10",
        "threads": "1", "progress-seconds": "1000"}


def tiny(**kw):
    """The tiny model's options, some replaced (tiny(cell="gru", lr="1e6"); a value None drops the option)."""
    o = dict(TINY, **{k.replace("_", "-"): v for k, v in kw.items()})
    return [x for k, v in o.items() if v is not None for x in (f"--{k}", v)]


class Result:
    def __init__(self, rc, out, err, secs):
        self.rc, self.out, self.err, self.secs = rc, out, err, secs

    def one_line_error(self, after_start=False):
        """Exit 2 with one line `manylm: error: ...` and nothing else on stderr; after_start: a run that failed
        once it had started may have printed its start and progress lines before that line (the last one)."""
        lines = self.err.strip().splitlines()
        errors = [x for x in lines if x.startswith(("manylm: error:", "manylm: internal error")) or "Sanitizer" in x
                  or "terminate called" in x or "runtime error" in x]
        if after_start:
            return self.rc == 2 and len(errors) == 1 and lines[-1].startswith("manylm: error:")
        return self.rc == 2 and len(lines) == 1 and lines[0].startswith("manylm: error:")

    def json(self):
        try:
            return json.loads(self.out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {}

    def why(self):
        lines = self.err.strip().splitlines()
        tail = lines[-1] if lines else ""
        return f"exit {self.rc}, {len(lines)} stderr lines: {tail[:150]}"


class Ctx:
    def __init__(self, a):
        self.manylm = os.path.abspath(a.manylm)
        self.work = a.work or tempfile.mkdtemp(prefix="manylm-reliability-")
        os.makedirs(self.work, exist_ok=True)
        self.rng = random.Random(a.seed)
        self.cache = os.path.join(self.work, "cache")
        d = os.path.join(self.work, "corpus")
        os.makedirs(d, exist_ok=True)
        self.train, self.valid, self.test = (os.path.join(d, f) for f in ("train.txt", "valid.txt", "test.txt"))
        for src, dst, n in (("train.txt", self.train, 1000), ("valid.txt", self.valid, 100), ("test.txt", self.test, 100)):
            with open(os.path.join(a.data, "ptb", src)) as f, open(dst, "w") as g:
                for _, line in zip(range(n), f):
                    g.write(line)

    def data(self, train=None):
        return ["--train", train or self.train, "--valid", self.valid, "--test", self.test, "--cache-dir", self.cache]

    def path(self, *p):
        return os.path.join(self.work, *p)

    def run(self, args, timeout=600):
        t = time.time()
        try:
            p = subprocess.run([self.manylm] + args, capture_output=True, text=True, errors="replace", timeout=timeout)
            return Result(p.returncode, p.stdout, p.stderr, time.time() - t)
        except subprocess.TimeoutExpired as e:
            return Result(-999, e.stdout or "", f"timed out after {timeout} s", time.time() - t)


# ---- safetensors, read as any other program would ----

def read_st(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", {})
    data = b[8 + n:]
    return {k: (v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}, meta, n


def write_st(path, tensors, meta, order=None):
    header, off, blobs = {}, 0, []
    if meta:
        header["__metadata__"] = meta
    for k in order or sorted(tensors):
        shape, raw = tensors[k]
        header[k] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def floats(raw):
    return struct.unpack(f"<{len(raw) // 4}f", raw)


def all_finite(path):
    tensors, _, _ = read_st(path)
    return all(math.isfinite(x) for _, raw in tensors.values() for x in floats(raw))


def train_state(run_dir):
    _, meta, _ = read_st(os.path.join(run_dir, "state.safetensors"))
    s = json.loads(meta["manylm.train_state"])
    return {k: v for k, v in s.items() if not k.endswith("seconds")}  # the clock differs between runs


def same_run(a, b):
    """'' when run directories a and b hold the same checkpoint bit for bit (but the clock), else what differs."""
    for f in ("model.safetensors", "state.safetensors"):
        ta, _, _ = read_st(os.path.join(a, f))
        tb, _, _ = read_st(os.path.join(b, f))
        if ta != tb:
            diff = sorted(k for k in set(ta) | set(tb) if ta.get(k) != tb.get(k))
            return f"{f} differs in {', '.join(diff[:3])}"
    if train_state(a) != train_state(b):
        return f"training state differs: {train_state(a)} vs {train_state(b)}"
    return ""


def snapshot(d):
    out = {}
    for f in ("config.json", "vocab.json", "model.safetensors", "state.safetensors"):
        p = os.path.join(d, f)
        if os.path.exists(p):
            with open(p, "rb") as g:
                out[f] = g.read()
    return out


# ---- kill -9 at a random moment, then resume ----

def trial_kill9(ctx, n):
    base = ["train"] + tiny() + ctx.data() + ["--epochs", "1", "--checkpoint-steps", "7"]
    ref = ctx.path("kill9-ref")
    t0 = time.time()
    r = ctx.run(base + ["--out", ref])
    wall = time.time() - t0
    if r.rc != 0:
        return [("reference run", False, r.why())]
    out = []
    for i in range(n):
        d = ctx.path(f"kill9-{i}")
        when = ctx.rng.uniform(0.02, 1.0) * wall
        p = subprocess.Popen([ctx.manylm] + base + ["--out", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(when)
        killed = p.poll() is None
        if killed:
            p.send_signal(signal.SIGKILL)
        p.wait()
        phase = ("finished" if not killed else "no directory" if not os.path.isdir(d) else
                 "before the first checkpoint" if not os.path.exists(os.path.join(d, "model.safetensors")) else
                 "after a checkpoint")
        if os.path.exists(os.path.join(d, "config.json")) or os.path.exists(os.path.join(d, "model.safetensors")):
            r = ctx.run(["train", "--resume", d])
        else:
            r = ctx.run(base + ["--out", d])  # nothing resumable was left: the run starts again
        name = f"kill at {when:.2f} s ({phase})"
        if r.rc != 0:
            out.append((name, False, "resume: " + r.why()))
            continue
        diff = same_run(d, ref)
        out.append((name, not diff, diff or "bit-identical"))
    return out


# ---- damaged checkpoints ----

def flip(path, lo, hi, rng):
    with open(path, "r+b") as f:
        b = bytearray(f.read())
        i = rng.randrange(lo, hi)
        b[i] ^= 1 << rng.randrange(8)
        f.seek(0)
        f.write(b)


def data_range(path):
    _, _, n = read_st(path)
    return 8 + n, os.path.getsize(path)


def edit_st(path, fn):
    t, meta, _ = read_st(path)
    order = sorted(t)
    fn(t, meta, order)
    write_st(path, t, meta, order)


def edit_header(path, fn):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    fn(h)
    hb = json.dumps(h).encode()
    hb += b" " * ((8 - (len(hb) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b[8 + n:])


def edit_json(path, fn):
    with open(path) as f:
        j = json.load(f)
    fn(j)
    with open(path, "w") as f:
        json.dump(j, f)


def edit_state(d, fn):
    def g(t, meta, order):
        s = json.loads(meta["manylm.train_state"])
        fn(s)
        meta["manylm.train_state"] = json.dumps(s)
    edit_st(os.path.join(d, "state.safetensors"), g)


def set_float(path, name, index, value):
    def g(t, meta, order):
        shape, raw = t[name]
        b = bytearray(raw)
        b[4 * index:4 * index + 4] = struct.pack("<f", value)
        t[name] = (shape, bytes(b))
    edit_st(path, g)


def write_text(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)


def mutations(rng):
    """(name, fn(run_dir)) — at least 50 ways to damage a checkpoint."""
    M, S = "model.safetensors", "state.safetensors"
    m = []
    for f in (M, S):
        for k in range(8 if f == M else 5):
            m.append((f"{f}: bit flip in tensor data #{k + 1}",
                      lambda d, f=f: flip(os.path.join(d, f), *data_range(os.path.join(d, f)), rng)))
        for k in range(3):
            m.append((f"{f}: bit flip in header #{k + 1}",
                      lambda d, f=f: flip(os.path.join(d, f), 8, data_range(os.path.join(d, f))[0], rng)))
        m += [
            (f"{f}: truncated to half", lambda d, f=f: os.truncate(os.path.join(d, f), os.path.getsize(os.path.join(d, f)) // 2)),
            (f"{f}: last byte cut", lambda d, f=f: os.truncate(os.path.join(d, f), os.path.getsize(os.path.join(d, f)) - 1)),
            (f"{f}: 8 bytes left", lambda d, f=f: os.truncate(os.path.join(d, f), 8)),
            (f"{f}: empty", lambda d, f=f: os.truncate(os.path.join(d, f), 0)),
            (f"{f}: garbage appended", lambda d, f=f: write_text(os.path.join(d, f), b"garbage!" * 3, "ab")),
            (f"{f}: header length 2^63", lambda d, f=f: _patch(os.path.join(d, f), 0, struct.pack("<Q", 1 << 63))),
            (f"{f}: removed", lambda d, f=f: os.remove(os.path.join(d, f))),
        ]
    m += [
        ("model: NaN in a weight", lambda d: set_float(os.path.join(d, M), "rnn.weight_hh_l0", 3, float("nan"))),
        ("model: +inf in a weight", lambda d: set_float(os.path.join(d, M), "decoder.bias", 0, float("inf"))),
        ("model: 1e30 in a weight", lambda d: set_float(os.path.join(d, M), "rnn.weight_ih_l0", 5, 1e30)),
        ("model: a tensor missing", lambda d: edit_st(os.path.join(d, M), lambda t, meta, o: (t.pop("decoder.bias"), o.remove("decoder.bias")))),
        ("model: an extra tensor", lambda d: edit_st(os.path.join(d, M), lambda t, meta, o: (t.__setitem__("extra", ([1], b"\0\0\0\0")), o.append("extra")))),
        ("model: two tensors' names swapped", lambda d: edit_header(os.path.join(d, M), _swap("rnn.bias_ih_l0", "rnn.bias_hh_l0"))),
        ("model: dtype F16", lambda d: edit_header(os.path.join(d, M), lambda h: h["decoder.bias"].__setitem__("dtype", "F16"))),
        ("model: shape 2^62+1", lambda d: edit_header(os.path.join(d, M), lambda h: h["decoder.bias"].__setitem__("shape", [2**62 + 1]))),
        ("model: overlapping data_offsets", lambda d: edit_header(os.path.join(d, M), _overlap)),
        ("model: offsets past the end", lambda d: edit_header(os.path.join(d, M), lambda h: h["decoder.bias"].__setitem__("data_offsets", [10**9, 10**9 + 4 * V]))),
        ("model: step metadata changed", lambda d: edit_st(os.path.join(d, M), lambda t, meta, o: meta.__setitem__("manylm.step", "999"))),
        ("model: another model's description (relu)", lambda d: edit_st(os.path.join(d, M), lambda t, meta, o: meta.__setitem__("manylm", meta["manylm"].replace("tanh", "relu")))),
        ("model: header re-spaced (harmless)", lambda d: edit_header(os.path.join(d, M), lambda h: None)),
        ("state: step -5", lambda d: edit_state(d, lambda s: s.__setitem__("step", -5))),
        ("state: epoch -3", lambda d: edit_state(d, lambda s: s.__setitem__("epoch", -3))),
        ("state: window 99999999", lambda d: edit_state(d, lambda s: s.__setitem__("window", 99999999))),
        ("state: lr -1", lambda d: edit_state(d, lambda s: s.__setitem__("lr", -1.0))),
        ("state: lr 1e300", lambda d: edit_state(d, lambda s: s.__setitem__("lr", 1e300))),
        ("state: epoch_tokens -1", lambda d: edit_state(d, lambda s: s.__setitem__("epoch_tokens", -1))),
        ("state: a field missing", lambda d: edit_state(d, lambda s: s.pop("window"))),
        ("state: a field of the wrong type", lambda d: edit_state(d, lambda s: s.__setitem__("step", "12"))),
        ("state: NaN in the carried state", lambda d: set_float(os.path.join(d, S), sorted(read_st(os.path.join(d, S))[0])[0], 0, float("nan"))),
        ("vocab.json: two words swapped", lambda d: edit_json(os.path.join(d, "vocab.json"), _swap_words)),
        ("vocab.json: a word twice", lambda d: edit_json(os.path.join(d, "vocab.json"), lambda j: j["words"].__setitem__(7, j["words"][8]))),
        ("vocab.json: <unk> renamed", lambda d: edit_json(os.path.join(d, "vocab.json"), lambda j: j["words"].__setitem__(j["words"].index("<unk>"), "<unknown>"))),
        ("vocab.json: a word dropped", lambda d: edit_json(os.path.join(d, "vocab.json"), lambda j: (j["words"].pop(), j["counts"].pop()))),
        ("vocab.json: truncated", lambda d: os.truncate(os.path.join(d, "vocab.json"), 100)),
        ("vocab.json: removed", lambda d: os.remove(os.path.join(d, "vocab.json"))),
        ("config.json: hidden 33", lambda d: edit_json(os.path.join(d, "config.json"), lambda j: j.__setitem__("hidden", 33))),
        ("config.json: activation relu", lambda d: edit_json(os.path.join(d, "config.json"), lambda j: j.__setitem__("activation", "relu"))),
        ("config.json: cell gru", lambda d: edit_json(os.path.join(d, "config.json"), lambda j: j.__setitem__("cell", "gru"))),
        ("config.json: bptt 0", lambda d: edit_json(os.path.join(d, "config.json"), lambda j: j.__setitem__("bptt", 0))),
        ("config.json: unknown key", lambda d: edit_json(os.path.join(d, "config.json"), lambda j: j.__setitem__("hiden", 32))),
        ("config.json: not JSON", lambda d: write_text(os.path.join(d, "config.json"), "{hidden: 32")),
        ("leftover: garbage model.safetensors.next", lambda d: write_text(os.path.join(d, M + ".next"), b"\0" * 100, "wb")),
        ("leftover: garbage state.safetensors.next", lambda d: write_text(os.path.join(d, S + ".next"), b"\1" * 100, "wb")),
        ("leftover: state.safetensors.next of the same step", lambda d: shutil.copy(os.path.join(d, S), os.path.join(d, S + ".next"))),
    ]
    return m


def _patch(path, at, b):
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(b)


def _swap(a, b):
    def g(h):
        h[a], h[b] = h[b], h[a]
    return g


def _overlap(h):
    names = sorted(k for k in h if k != "__metadata__")
    a, b = h[names[0]]["data_offsets"], h[names[1]]["data_offsets"]
    if b[1] - b[0] <= a[1] - a[0]:
        h[names[1]]["data_offsets"] = [a[0], a[0] + b[1] - b[0]]


def _swap_words(j):
    w = j["words"]
    w[10], w[11] = w[11], w[10]


def trial_mutation(ctx):
    base = ctx.path("mut-base")
    args = ["train"] + tiny() + ctx.data() + ["--epochs", "1", "--checkpoint-steps", "20"]
    r = ctx.run(args + ["--out", base, "--max-steps", "40"])
    if r.rc != 0:
        return [("base run", False, r.why())]
    ref = ctx.path("mut-ref")
    shutil.copytree(base, ref)
    ref_eval = ctx.run(["eval", "--model", base, "--json", "--text", ctx.valid]).json().get("perplexity")
    more = ["--max-steps", "50"]  # 10 steps past the checkpoint: what was loaded shows in every tensor
    r = ctx.run(["train", "--resume", ref] + more)
    if r.rc != 0 or ref_eval is None:
        return [("reference resume", False, r.why())]
    out = []
    for i, (name, fn) in enumerate(mutations(ctx.rng)):
        d = ctx.path(f"mut-{i}")
        shutil.copytree(base, d)
        try:
            fn(d)
        except Exception as e:  # noqa: BLE001 — the mutation itself could not be made
            out.append((name, False, f"mutation failed: {e!r}"))
            continue
        why = []
        before = snapshot(d)
        e = ctx.run(["eval", "--model", d, "--json", "--text", ctx.valid])
        if e.one_line_error():
            pass
        elif e.rc == 0 and e.json().get("perplexity") == ref_eval:
            pass
        elif e.rc == 0:
            why.append(f"eval exit 0 with perplexity {e.json().get('perplexity')} (undamaged: {ref_eval})")
        else:
            why.append("eval " + e.why())
        r = ctx.run(["train", "--resume", d] + more)
        if r.one_line_error():
            if snapshot(d) != before:
                why.append("a rejected resume changed the run's files")
        elif r.rc == 0:
            diff = same_run(d, ref)
            if diff:
                why.append("resume exit 0 but " + diff)
        else:
            why.append("resume " + r.why())
        out.append((name, not why, "; ".join(why) or _verdict(e, r)))
        shutil.rmtree(d, ignore_errors=True)
    return out


def _verdict(e, r):
    f = lambda x: "rejected" if x.rc == 2 else "equal"
    return f"eval {f(e)}, resume {f(r)}"


# ---- corpus files ----

def corpus_files(rng):
    """(name, bytes or a special file, expectation 'ok' | 'error' | 'either' (0, or 2 with one line), extra args)."""
    text = b"the cat sat on the mat\nthe dog sat on the log\n" * 40
    rand = bytes(rng.randrange(256) for _ in range(4096))
    c = [
        ("LF text", text, "ok"), ("CRLF text", text.replace(b"\n", b"\r\n"), "ok"),
        ("CR-only text (old Mac)", text.replace(b"\n", b"\r"), "ok"),
        ("mixed line ends", text.replace(b"\n", b"\r", 10).replace(b"\n", b"\r\n", 10), "ok"),
        ("UTF-8 BOM", b"\xef\xbb\xbf" + text, "ok"), ("no final newline", text.rstrip(b"\n"), "ok"),
        ("tabs, vertical tabs, form feeds", text.replace(b" ", b"\t\v\f"), "ok"),
        ("multilingual UTF-8", "naïve café 東京 Ελλάδα привет 🙂\n".encode() * 60, "ok"),
        ("one huge line (3 MB)", b"word " * 600000, "ok"),
        ("10,000 empty lines and text", b"\n" * 10000 + text, "ok"),
        ("literal <unk> and <eos> tokens", b"<unk> <eos> the <unk>\n" * 60, "ok"),
        ("a 60 KB word", b"x" * 60000 + b"\n" + text, "ok"),
        ("a 70 KB word (over the 64 KiB limit)", b"x" * 70000 + b"\n", "error"),
        ("empty file", b"", "error"), ("only newlines", b"\n\n\n", "either"), ("only spaces", b"    \t  ", "either"),
        ("only a CR", b"\r", "either"), ("UTF-8 BOM only", b"\xef\xbb\xbf", "error"),
        ("NUL in the middle", text[:100] + b"\0" + text[100:], "error"), ("random binary", rand, "error"),
        ("gzip of text", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + rand[:200], "error"),
        ("UTF-16LE with BOM", b"\xff\xfe" + "the cat sat\n".encode("utf-16-le") * 20, "error"),
        ("Latin-1 text (invalid UTF-8)", "café naïve\n".encode("latin-1") * 50, "error"),
        ("lone 0xFF byte", text + b"\xff\n", "error"), ("overlong UTF-8 '/'", text + b"\xc0\xaf\n", "error"),
        ("UTF-8 surrogate", text + b"\xed\xa0\x80\n", "error"), ("truncated UTF-8 at the end", text + b"caf\xc3", "error"),
        ("a directory", "DIR", "error"), ("a missing file", "MISSING", "error"), ("a FIFO", "FIFO", "error"),
        ("a symlink to text", "SYMLINK", "ok"), ("a symlink loop", "LOOP", "error"),
        ("char mode: CR-only", text.replace(b"\n", b"\r"), "ok", ["--tokens", "char"]),
        ("char mode: invalid UTF-8", text + b"\xff", "error", ["--tokens", "char"]),
        ("char mode: truncated UTF-8", text + b"\xe2\x82", "error", ["--tokens", "char"]),
    ]
    return [x if len(x) == 4 else x + ([],) for x in c]


def make_corpus(ctx, i, content):
    p = ctx.path("corpora", f"c{i}.txt")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if content == "DIR":
        os.makedirs(p, exist_ok=True)
    elif content == "MISSING":
        pass
    elif content == "FIFO":
        os.mkfifo(p)
    elif content == "SYMLINK":
        os.symlink(ctx.train, p)
    elif content == "LOOP":
        os.symlink(p, p)
    else:
        with open(p, "wb") as f:
            f.write(content)
    return p


def trial_corpus(ctx):
    out = []
    for i, (name, content, expect, extra) in enumerate(corpus_files(ctx.rng)):
        p = make_corpus(ctx, i, content)
        d = ctx.path(f"corpus-run-{i}")
        r = ctx.run(["train"] + tiny() + ctx.data(p) + extra + ["--epochs", "1", "--max-steps", "3", "--out", d],
                    timeout=120)
        held = any(os.path.exists(os.path.join(d, f)) for f in ("config.json", "vocab.json", "model.safetensors"))
        if expect == "ok" or (expect == "either" and r.rc == 0):
            ok, why = r.rc == 0, "read" if r.rc == 0 else r.why()
        else:
            ok = r.one_line_error() and not held
            why = ("refused: " + r.err.strip()[:110] if ok else
                   r.why() + ("; left a run directory behind" if held else ""))
        out.append((name, ok, why))
    return out


# ---- concurrent writers ----

def trial_writers(ctx, n):
    a = ["train"] + tiny() + ctx.data() + ["--epochs", "1", "--checkpoint-steps", "10", "--max-steps", "60"]
    b = ["train"] + tiny(cell="gru", hidden="24", embed="24", bptt=None) + ctx.data() + ["--epochs", "1", "--max-steps", "60"]
    out = []
    for i in range(n):
        d = ctx.path(f"writers-{i}")
        delay = ctx.rng.uniform(0.0, 0.15)
        pa = subprocess.Popen([ctx.manylm] + a + ["--out", d], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        pb = subprocess.Popen([ctx.manylm] + b + ["--out", d], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ea, eb = pa.communicate()[1], pb.communicate()[1]
        ra, rb = Result(pa.returncode, "", ea, 0), Result(pb.returncode, "", eb, 0)
        e = ctx.run(["eval", "--model", d, "--text", ctx.valid])
        why = []
        if sorted([ra.rc, rb.rc]) != [0, 2]:
            why.append(f"exits {ra.rc} and {rb.rc} (one 0, one 2 expected)")
        for r in (ra, rb):
            if r.rc == 2 and not r.one_line_error(after_start=True):
                why.append("refused with " + r.why())
        if e.rc != 0:
            why.append("directory corrupted: eval " + e.why())
        loser = ra if ra.rc == 2 else rb
        out.append((f"two trainers {delay:.3f} s apart", not why, "; ".join(why) or loser.err.strip()[:110]))
    # --resume of a live run.
    for i in range(2):
        d = ctx.path(f"writers-live-{i}")
        pa = subprocess.Popen([ctx.manylm] + a[:-2] + ["--max-steps", "200", "--out", d], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        t = time.time()
        while not os.path.exists(os.path.join(d, "model.safetensors")) and time.time() - t < 60 and pa.poll() is None:
            time.sleep(0.02)
        r = ctx.run(["train", "--resume", d])
        pa.wait()
        e = ctx.run(["eval", "--model", d, "--text", ctx.valid])
        why = []
        if pa.returncode != 0:
            why.append(f"the live run exited {pa.returncode}")
        if not r.one_line_error():
            why.append("the second writer: " + r.why())
        if e.rc != 0:
            why.append("eval " + e.why())
        out.append(("--resume of a live run", not why, "; ".join(why) or r.err.strip()[:110]))
    return out


# ---- full disk ----

def leftovers(d):
    return sorted(f for f in os.listdir(d) if ".next" in f or ".tmp" in f) if os.path.isdir(d) else []


def trial_diskfull(ctx):
    if os.geteuid() != 0:
        return [("tmpfs mounts need root", None, "skipped")]
    out = []
    args = ["train"] + tiny() + ctx.data() + ["--epochs", "1", "--checkpoint-steps", "15", "--max-steps", "60"]
    for size in ("8k", "24k", "200k", "700k", "1200k", "1800k", "3m"):
        mnt = ctx.path(f"tmpfs-{size}")
        os.makedirs(mnt, exist_ok=True)
        m = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mnt], capture_output=True, text=True)
        if m.returncode != 0:
            out.append((f"tmpfs of {size}", None, "skipped: mount failed: " + m.stderr.strip()[:80]))
            continue
        try:
            d = os.path.join(mnt, "run")
            r = ctx.run(args + ["--out", d])
            why = []
            if r.rc not in (0, 2) or (r.rc == 2 and not r.one_line_error(after_start=True)):
                why.append(r.why())
            if leftovers(d):
                why.append("left " + ", ".join(leftovers(d)))
            holds = os.path.exists(os.path.join(d, "config.json"))
            has_ckpt = os.path.exists(os.path.join(d, "model.safetensors"))
            if holds:  # what was left must be a run that loads (a checkpoint) or resumes
                copy = ctx.path(f"diskfull-copy-{size}")
                shutil.copytree(d, copy)
                if has_ckpt:
                    e = ctx.run(["eval", "--model", copy, "--text", ctx.valid])
                    if e.rc != 0:
                        why.append("checkpoint not intact: eval " + e.why())
                rr = ctx.run(["train", "--resume", copy])
                if rr.rc != 0:
                    why.append("stuck directory: --resume " + rr.why())
            elif os.path.isdir(d) and os.listdir(d) and not set(os.listdir(d)) <= {".lock"}:
                why.append("half-made directory: " + ", ".join(sorted(os.listdir(d))))
            state = ("finished" if r.rc == 0 else "checkpoint kept" if has_ckpt else
                     "nothing kept" if not holds else "set-up only")
            out.append((f"tmpfs of {size}", not why, "; ".join(why) or f"exit {r.rc}, {state}: " + r.err.strip()[-90:]))
        finally:
            subprocess.run(["umount", mnt], capture_output=True)
    return out


# ---- divergence ----

def trial_diverge(ctx):
    variants = [
        ("lstm sgd --lr 1e6 --clip 0", {"lr": "1e6", "clip": "0"}),
        ("lstm adam --lr 1e6 --clip 0", {"optimizer": "adam", "lr": "1e6", "clip": "0"}),
        ("gru sgd --lr 1e6 --clip 0", {"cell": "gru", "lr": "1e6", "clip": "0"}),
        ("elman relu --lr 1e3 --clip 0", {"cell": "elman", "activation": "relu", "lr": "1e3", "clip": "0"}),
        ("lstm sgd --lr 1e25 --clip 0 (NaN)", {"lr": "1e25", "clip": "0"}),
    ]
    out = []
    for i, (name, extra) in enumerate(variants):
        d = ctx.path(f"diverge-{i}")
        r = ctx.run(["train"] + tiny(**extra) + ctx.data() + ["--epochs", "1", "--checkpoint-steps", "5", "--max-steps",
                                                             "40", "--out", d, "--json"])
        why = []
        if r.rc not in (0, 2) or (r.rc == 2 and not r.one_line_error(after_start=True)):
            why.append(r.why())
        for f in ("model.safetensors", "state.safetensors", "best.safetensors", "average.safetensors"):
            p = os.path.join(d, f)
            if os.path.exists(p) and not all_finite(p):
                why.append(f"{f} holds NaN or inf")
        if os.path.exists(os.path.join(d, "model.safetensors")):
            e = ctx.run(["eval", "--model", d, "--json", "--text", ctx.valid])
            ppl = e.json().get("perplexity")
            if e.rc == 0 and (ppl is None or not math.isfinite(ppl) or ppl > 10 * V):
                why.append(f"an exploded checkpoint was written (eval perplexity {_ppl(e)})")
        if r.rc == 0:
            v = r.json().get("valid_ppl")
            if v is None or not math.isfinite(v) or v > 10 * V:
                why.append(f"exit 0 with valid perplexity {'null (not finite)' if v is None else v}")
        out.append((name, not why, "; ".join(why) or f"exit {r.rc}: " + (r.err.strip().splitlines() or [""])[-1][:100]))
    return out


def _ppl(e):
    """eval's perplexity as printed (--json writes a non-finite one as null; the text line has it as nan/inf)."""
    v = e.json().get("perplexity")
    return v if v is not None else "null (not finite)"


# ---- the table ----

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--manylm", default=os.path.join(here, "../../build/manylm"))
    ap.add_argument("--data", default=os.path.join(here, "../../../shared/data"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kill", type=int, default=20, help="kill -9 trials")
    ap.add_argument("--writers", type=int, default=10, help="concurrent-writer trials")
    ap.add_argument("--only", default="kill9,mutation,corpus,writers,diskfull,diverge")
    ap.add_argument("--work", help="scratch directory (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout instead of the table")
    a = ap.parse_args()
    ctx = Ctx(a)
    trials = {"kill9": lambda: trial_kill9(ctx, a.kill), "mutation": lambda: trial_mutation(ctx),
              "corpus": lambda: trial_corpus(ctx), "writers": lambda: trial_writers(ctx, a.writers),
              "diskfull": lambda: trial_diskfull(ctx), "diverge": lambda: trial_diverge(ctx)}
    results, t0 = {}, time.time()
    try:
        for k in a.only.split(","):
            t = time.time()
            results[k] = {"trials": trials[k](), "seconds": round(time.time() - t, 1)}
            print(f"reliability: {k} done in {results[k]['seconds']} s", file=sys.stderr)
    finally:
        if not a.keep:
            shutil.rmtree(ctx.work, ignore_errors=True)
    failed = sum(1 for r in results.values() for _, ok, _ in r["trials"] if ok is False)
    if a.json:
        print(json.dumps({"manylm": ctx.manylm, "seed": a.seed, "seconds": round(time.time() - t0, 1), "failed": failed,
                          "categories": {k: {"seconds": r["seconds"],
                                             "pass": sum(1 for _, ok, _ in r["trials"] if ok),
                                             "fail": sum(1 for _, ok, _ in r["trials"] if ok is False),
                                             "skipped": sum(1 for _, ok, _ in r["trials"] if ok is None),
                                             "trials": [{"name": n, "ok": ok, "detail": d} for n, ok, d in r["trials"]]}
                                         for k, r in results.items()}}, indent=1))
    else:
        print(f"{'category':<10} {'trials':>6} {'pass':>5} {'fail':>5} {'skip':>5} {'secs':>6}")
        for k, r in results.items():
            t = r["trials"]
            print(f"{k:<10} {len(t):>6} {sum(1 for x in t if x[1]):>5} {sum(1 for x in t if x[1] is False):>5} "
                  f"{sum(1 for x in t if x[1] is None):>5} {r['seconds']:>6}")
        for k, r in results.items():
            for n, ok, d in r["trials"]:
                if ok is not True:
                    print(f"{'FAIL' if ok is False else 'SKIP'} {k}: {n}: {d}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
