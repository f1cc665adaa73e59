#!/usr/bin/python3
"""Peers in one run: manylm, oneDNN's LSTM primitive and PyTorch train the same recipe's step on the same
machine, alternately, so that every ratio compares runs that shared the machine's state.

    /usr/bin/python3 bench/peers/compare.py --recipe recipes/ptb-medium.json [--threads 2] [--repeats 3] [--steps 20]
        [--peers onednn-lstm,pytorch-1.13,pytorch-current] [--plot PNG] [--out-json FILE] [--json]

Each repeat runs, in turn: `manylm bench train` (the trainer's own train_step; FP32, and bf16 when the CPU
has AVX512_BF16), build/onednn_lstm_peer (oneDNN's own LSTM primitive, forward_training + backward, on the
recipe's L layers, H, B, T: the recurrent part of the step only; LSTM recipes only), PyTorch 1.13 from
Debian (/usr/bin/python3), and the current PyTorch from PyPI in a virtual environment
(bench/peers/setup_venv.sh installs it) in FP32 and with bf16 autocast. Prints medians of tokens/s and
manylm's ratio to each peer, then a second table for the recurrent part alone: manylm's rec_fwd_ms +
rec_bwd_ms (from the same bench train rows) against the LSTM primitive's forward + backward, as Markdown
(or one JSON object with --json). --plot draws the medians as bars (gnuplot); --out-json keeps every raw
result. A PyTorch that is not installed is skipped with a note; the C++ peer must be built
(`ninja -C build onednn_lstm_peer`) unless --peers leaves it out.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEER_GROUPS = ["onednn-lstm", "pytorch-1.13", "pytorch-current"]
LABELS = {  # short names for tables and plots
    "manylm-fp32": "manylm FP32", "manylm-bf16": "manylm bf16", "onednn-lstm-fp32": "oneDNN LSTM primitive FP32",
    "pytorch-1.13-fp32": "PyTorch 1.13 FP32", "pytorch-current-fp32": "PyTorch current FP32",
    "pytorch-current-bf16-autocast": "PyTorch current bf16 autocast",
}


def run_json(cmd, notes=None, name=""):
    """The JSON object on the last stdout line of cmd. On failure: stops, or with `notes`, adds one and returns None."""
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        if notes is None:
            sys.exit(f"compare.py: {' '.join(cmd)} failed (exit {p.returncode}):\n{p.stderr.strip()[-2000:]}")
        last = (p.stderr.strip().splitlines() or ["no message"])[-1]
        shown = " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT + os.sep) else c for c in cmd)
        notes.append(f"{name} skipped: `{shown}` failed (exit {p.returncode}): {last}")
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def has_torch(python):
    return subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0


def recipe_shape(path):
    """The fields of the recipe the peers need, with manylm's defaults (src/train/config.h)."""
    with open(path) as f:
        cfg = json.load(f)
    d = {"cell": "elman", "layers": 1, "hidden": 200, "embed": 200, "batch": 20, "bptt": 20}
    return {k: cfg.get(k, v) for k, v in d.items()}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_commit():
    p = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else "unknown"


def plot(path, title, step_bars, rec_bars, labels):
    """Bars of median tokens/s; manylm's in orange, the peers' in blue. A second panel for the recurrent part."""
    terms = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    term = "pngcairo" if "pngcairo" in terms.stdout + terms.stderr else "png"
    manylm, peer = 0xD95F02, 0x5B7DB1
    panels = [("training step (embedding, LSTM layers, softmax, update)", step_bars, "tokens/s (median; higher is faster)")]
    if rec_bars:
        panels.append(("recurrent part only (LSTM layers, forward + backward)", rec_bars,
                       "T·B ÷ (forward + backward time), tokens/s"))
    with tempfile.TemporaryDirectory() as tmp:
        script = [f'set terminal {term} size {640 * len(panels) + 80},620 noenhanced font ",11"',
                  f'set output "{path}"', "set datafile separator '\\t'", "set style fill solid 0.85 border -1",
                  "set boxwidth 0.65", "set yrange [0:*]", "set grid ytics", "set xtics rotate by -30 nomirror",
                  "set ytics nomirror", "set key top right", "set offsets 0.5, 0.5, 0, 0",
                  f'set multiplot layout 1,{len(panels)} title "{title}"']
        for i, (name, bars, ylabel) in enumerate(panels):
            data = os.path.join(tmp, f"bars{i}.tsv")
            with open(data, "w") as f:
                for label, value, text in bars:
                    color = manylm if label.startswith("manylm") else peer
                    f.write(f"{labels.get(label, label)}\t{value:.1f}\t{color}\t{text}\n")
            ymax = max(v for _, v, _ in bars) * 1.18
            script += [f'set title "{name}"', f'set ylabel "{ylabel}"',
                       f"set yrange [0:{ymax:.0f}]",
                       f'plot "{data}" using 0:2:3:xtic(1) with boxes lc rgb variable notitle, '
                       f'"" using 0:2:4 with labels offset 0,0.8 notitle, '
                       f'NaN with boxes lc rgb "#{manylm:06X}" title "manylm", '
                       f'NaN with boxes lc rgb "#{peer:06X}" title "peers"']
        script.append("unset multiplot")
        p = subprocess.run(["gnuplot"], input="\n".join(script) + "\n", capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"compare.py: gnuplot failed:\n{p.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--manylm", default=os.path.join(ROOT, "build", "manylm"))
    ap.add_argument("--manylm-gemm", default="auto", help="manylm's FP32 GEMM backend (bf16 always uses onednn)")
    ap.add_argument("--onednn-lstm", default=os.path.join(ROOT, "build", "onednn_lstm_peer"))
    ap.add_argument("--peers", default=",".join(PEER_GROUPS), help="comma list of " + ", ".join(PEER_GROUPS))
    ap.add_argument("--plot", metavar="PNG", help="bar chart of the median tokens/s (gnuplot)")
    ap.add_argument("--out-json", metavar="FILE", help="every raw result of every repeat, and the medians")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    groups = [g for g in a.peers.split(",") if g]
    for g in groups:
        if g not in PEER_GROUPS:
            sys.exit(f"compare.py: --peers: unknown peer {g!r} (known: {', '.join(PEER_GROUPS)})")
    shape = recipe_shape(a.recipe)
    notes = []
    torch_lm = os.path.join(HERE, "torch_lm.py")
    peers = {}  # whole training step, tokens/s
    if "pytorch-1.13" in groups:
        if has_torch("/usr/bin/python3"):
            peers["pytorch-1.13-fp32"] = ["/usr/bin/python3", torch_lm, a.recipe]
        else:
            notes.append("PyTorch 1.13 skipped: /usr/bin/python3 has no torch (scripts/setup.sh --peers installs it)")
    if "pytorch-current" in groups:
        venv = subprocess.run(["bash", os.path.join(HERE, "setup_venv.sh")], capture_output=True, text=True)
        venv_python = venv.stdout.strip()
        if venv.returncode == 0 and has_torch(venv_python):
            peers["pytorch-current-fp32"] = [venv_python, torch_lm, a.recipe]
            peers["pytorch-current-bf16-autocast"] = [venv_python, torch_lm, a.recipe, "--autocast", "bf16"]
        else:
            notes.append("current PyTorch skipped: bench/peers/setup_venv.sh could not make its venv ("
                         + (venv.stderr.strip().splitlines() or ["no message"])[-1] + ")")
    lstm_cmd = None
    if "onednn-lstm" in groups:
        if shape["cell"] != "lstm":
            notes.append(f"oneDNN LSTM primitive skipped: the recipe's cell is {shape['cell']}")
        elif not os.access(a.onednn_lstm, os.X_OK):
            sys.exit(f"compare.py: {a.onednn_lstm} not found: build it with `ninja -C build onednn_lstm_peer` "
                     "(or leave it out: --peers pytorch-1.13,pytorch-current)")
        else:
            lstm_cmd = [a.onednn_lstm, "--layers", str(shape["layers"]), "--hidden", str(shape["hidden"]),
                        "--batch", str(shape["batch"]), "--bptt", str(shape["bptt"]), "--threads", str(a.threads),
                        "--steps", str(a.steps), "--repeats", "1", "--json"]
            if shape["embed"] != shape["hidden"]:
                notes.append(f"the oneDNN LSTM primitive's first layer reads H = {shape['hidden']} inputs, manylm's "
                             f"E = {shape['embed']} (one primitive for all layers needs input = hidden)")
    tokens = shape["batch"] * shape["bptt"]
    results = {name: [] for name in ["manylm-fp32", "manylm-bf16", *peers]}  # tokens/s of the whole step
    rec = {"manylm-fp32": [], "manylm-bf16": [], "onednn-lstm-fp32": []}      # (fwd ms, bwd ms) of the LSTM layers
    raw = {"manylm": [], "onednn-lstm": [], **{k: [] for k in peers}}
    versions = {}
    cpu = cpu_name()
    for r in range(a.repeats):
        m = run_json([a.manylm, "bench", "train", "--recipe", a.recipe, "--threads-list", str(a.threads), "--repeats", "1",
                      "--steps", str(a.steps), "--backend-list", ",".join(dict.fromkeys([a.manylm_gemm, "onednn"])),
                      "--precision-list", "fp32,bf16", "--json"])
        raw["manylm"].append(m)
        for row in m["rows"]:  # no bf16 row where the CPU has no AVX512_BF16
            if row["precision"] == "fp32" and row["backend"] != a.manylm_gemm:
                continue
            name = "manylm-" + row["precision"]
            results[name].append(float(row["tokens_per_s"]))
            rec[name].append((float(row["rec_fwd_ms"]), float(row["rec_bwd_ms"])))
            versions[name] = f'{row["pct_peak"]} % of its {row["precision"]} peak'
        if lstm_cmd:
            p = run_json(lstm_cmd)
            raw["onednn-lstm"].append(p)
            rec["onednn-lstm-fp32"].append((p["fwd_ms"], p["bwd_ms"]))
            versions["onednn-lstm-fp32"] = f'oneDNN {p["dnnl_version"]}, {p["gflops"]:.0f} GFLOP/s'
        for name, cmd in list(peers.items()):
            p = run_json(cmd + ["--time-steps", str(a.steps), "--threads", str(a.threads)], notes, name)
            if p is None:  # e.g. bf16 autocast of an LSTM on a CPU without AVX512_BF16: dropped from here on
                del peers[name]
                continue
            raw[name].append(p)
            results[name].append(p["tokens_per_sec"])
            versions[name] = "torch " + p["torch"]
        line = ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items() if v)
        line += "; recurrent ms: " + ", ".join(f"{k} {sum(v[-1]):.1f}" for k, v in rec.items() if v)
        print(f"repeat {r + 1}: {line}", file=sys.stderr)
    results = {k: v for k, v in results.items() if v}
    rec = {k: v for k, v in rec.items() if v}
    med = {k: statistics.median(v) for k, v in results.items()}
    rec_med = {k: {"fwd_ms": statistics.median(f for f, _ in v), "bwd_ms": statistics.median(b for _, b in v),
                   "total_ms": statistics.median(f + b for f, b in v)} for k, v in rec.items()}
    lstm_flops = 3 * sum(2 * shape["bptt"] * shape["batch"] * 4 * shape["hidden"]
                         * ((shape["embed"] if l == 0 else shape["hidden"]) + shape["hidden"])
                         for l in range(shape["layers"]))
    for k, v in rec_med.items():
        v["gflops"] = lstm_flops / (v["total_ms"] * 1e-3) * 1e-9
        v["tokens_per_sec"] = tokens / (v["total_ms"] * 1e-3)
    cpu = raw["manylm"][0].get("cpu", cpu) if raw["manylm"] else cpu
    summary = {"recipe": a.recipe, "shape": shape, "cpu": cpu, "commit": git_commit(), "threads": a.threads,
               "repeats": a.repeats, "steps": a.steps, "tokens_per_sec": med, "runs": results,
               "recurrent_ms": rec_med, "recurrent_runs": {k: [list(x) for x in v] for k, v in rec.items()},
               "versions": versions, "notes": notes}
    if a.out_json:
        with open(a.out_json, "w") as f:
            json.dump({**summary, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "raw": raw}, f, indent=1)
    if a.plot:
        labels = dict(LABELS)
        for k in ("pytorch-current-fp32", "pytorch-current-bf16-autocast"):
            if k in versions:  # "torch 2.15.0+cu132" → PyTorch 2.15
                labels[k] = labels[k].replace("current", ".".join(versions[k].split()[1].split(".")[:2]))
        title = (f"{os.path.basename(a.recipe)}: {shape['layers']}x{shape['hidden']} {shape['cell'].upper()}, "
                 f"B {shape['batch']}, T {shape['bptt']}; {cpu}, {a.threads} thread{'s' if a.threads > 1 else ''}; "
                 f"median of {a.repeats} x {a.steps} steps")
        plot(a.plot, title, [(k, v, f"{v:,.0f}") for k, v in med.items()],
             [(k, v["tokens_per_sec"], f'{v["tokens_per_sec"]:,.0f} ({v["total_ms"]:.0f} ms)') for k, v in rec_med.items()],
             labels)
    if a.json:
        print(json.dumps(summary))
        return
    print(f"{a.recipe}, {cpu}, {a.threads} threads, median of {a.repeats} alternating repeats of {a.steps} steps\n")
    bf16 = "manylm-bf16" in med  # else: this CPU has no AVX512_BF16
    print("| system | tokens/s | manylm FP32 ÷ this |" + (" manylm bf16 ÷ this |" if bf16 else "") + " runs |")
    print("| --- | ---: | ---: |" + (" ---: |" if bf16 else "") + " --- |")
    for k, v in med.items():
        print(f"| {k} ({versions[k]}) | {v:,.0f} | {med['manylm-fp32'] / v:.2f}× | "
              + (f"{med['manylm-bf16'] / v:.2f}× | " if bf16 else "") + ", ".join(f"{x:.0f}" for x in results[k]) + " |")
    if "onednn-lstm-fp32" in rec_med:
        ref = rec_med["onednn-lstm-fp32"]["total_ms"]
        print(f"\nrecurrent part (LSTM layers only): {shape['layers']}×{shape['hidden']}, B {shape['batch']}, "
              f"T {shape['bptt']}, forward + backward per training step; manylm's rec_fwd_ms + rec_bwd_ms from the "
              "same bench train rows (they include its dropout between layers), oneDNN's lstm_forward "
              "(forward_training) + lstm_backward with the weights reordered once outside the timing\n")
        print("| system | forward ms | backward ms | total ms | GFLOP/s | oneDNN LSTM ms ÷ this (> 1: faster) "
              "| runs (total ms) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for k, v in rec_med.items():
            print(f"| {k} | {v['fwd_ms']:.2f} | {v['bwd_ms']:.2f} | {v['total_ms']:.2f} | {v['gflops']:.1f} | "
                  f"{ref / v['total_ms']:.2f}× | " + ", ".join(f"{f + b:.1f}" for f, b in rec[k]) + " |")
        p = raw["onednn-lstm"][-1]
        print(f"\noneDNN {p['dnnl_version']} ({'/'.join(p['impl'])}) chose: {p['weights_formats']}; reordering the "
              f"weights from ldigo into them every step (as a trainer updating ldigo weights would) adds "
              f"{statistics.median(x['reorder_ms'] for x in raw['onednn-lstm']):.1f} ms, not counted above")
    for n in notes:
        print(f"\nnote: {n}")


if __name__ == "__main__":
    main()
