#!/usr/bin/env python3
"""report.py — tables from bench/cluster/measure.sh's output: per (nodes, rate, recipe) the training step of every
gradient scheme as `bench comm` measured it over the emulated links (compute only, reduction after backward,
overlapped), the share of the reduction hidden behind backward, the bytes per step; alpha and beta fitted to
`bench comm --part sizes` over the link; and docs/SCALING.md's model (bench/scaling/cost_model.py) fed with
those alpha, beta and the measured compute, predicted against measured. With --plot FILE also a PNG (gnuplot)
of step time per scheme per rate.

    python3 bench/cluster/report.py OUT_DIR [--plot docs/img/cluster-step-times.png]

Standard library only (gnuplot for --plot).
"""
import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COST_MODEL = os.path.join(HERE, "..", "scaling", "cost_model.py")
SCHEMES = ["none", "fp16", "int8", "dyn8", "threshold"]
# The row of cost_model.py that is what manylm runs for each scheme (threshold: the recipes' density 1 %).
MODEL_KEY = {"fp16": "fp16/linear", "int8": "int8/linear", "dyn8": "dyn8/linear", "threshold": "threshold-0.01/linear"}
# V x E of each recipe: with SGD (sparse updates, auto) the embedding travels as rows, not in the dense block.
EMBEDDING = {"ptb-small": 10000 * 200, "ptb-medium": 10000 * 650}
PARAMS = {"ptb-small": 4_653_200, "ptb-medium": 19_780_400}


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text.splitlines()[-1]) if text else None


def fit_alpha_beta(sizes):
    """The fp32 ('none') rows. With 2 ranks libnbc's all-reduce is the binomial tree: reduce then broadcast, S
    bytes each way one after the other, 2 messages: t = 2 alpha + 2 S / beta. beta from an ordinary least-squares
    line through all sizes (the large ones dominate it); alpha from the smallest size, less its bytes' time."""
    pts = sorted((r["fp32_bytes"], r["time_us"] * 1e-6) for r in sizes["rows"] if r["scheme"] == "none")
    n = len(pts)
    mx, my = sum(s for s, _ in pts) / n, sum(t for _, t in pts) / n
    b = sum((s - mx) * (t - my) for s, t in pts) / sum((s - mx) ** 2 for s, _ in pts)
    beta = 2 / b
    alpha = max((pts[0][1] - 2 * pts[0][0] / beta) / 2, 0.0)
    return alpha, beta, pts


# One thread's quiet-machine compute per step, ms: 2 x the 2-thread figures of cost_model.py (Zen 5, quiet). The
# ratio of a measured compute to it is the node's slowdown, by which --codec-scale multiplies the codec costs.
QUIET_1T_MS = {"ptb-small": 2 * 400 / 14601 * 1e3, "ptb-medium": 2 * 700 / 4294 * 1e3}


def predict(recipe, nodes, alpha, beta, compute_ms, row_mb, codec_scale=1.0):
    """cost_model.py's step (s = 0 and s = 1) for the dense block (the embedding excluded: sparse updates) plus
    the embedding rows' blocking reduction after it (ids all-gather + values all-reduce: 2 x bytes / beta)."""
    n = PARAMS[recipe] - EMBEDDING[recipe]
    out = subprocess.run([sys.executable, COST_MODEL, "--recipe", recipe, "--nodes", str(nodes), "--alpha",
                          str(alpha * 1e6), "--beta", str(beta / 1e9), "--compute-ms", str(compute_ms), "--params",
                          str(n), "--codec-scale", str(codec_scale), "--json"], capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)["rows"]
    rows_ms = 2 * row_mb * 1e6 / beta * 1e3 + 3 * alpha * 1e3
    pred = {}
    for scheme in SCHEMES:
        if scheme == "none":
            r = next(x for x in rows if x["scheme"] == "fp32 (none)" and x["manylm_today"])
        else:
            r = next(x for x in rows if x["key"] == MODEL_KEY[scheme])
        pred[scheme] = (r["overlap"]["none"]["step_ms"] + rows_ms, r["overlap"]["full"]["step_ms"] + rows_ms,
                        r["comm_ms"] + rows_ms)
    return pred


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" ---: " if i else " --- " for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--plot", default="")
    ap.add_argument("--short", action="store_true", help="narrow tables (docs: 120 columns)")
    A = ap.parse_args()
    fits = {}
    for path in sorted(glob.glob(os.path.join(A.out, "*-sizes.json"))):
        sizes = load(path)
        if not sizes or not os.path.exists(path.replace(".json", ".emu.json")):
            continue
        rate = os.path.basename(path).split("-")[1]
        emu = load(path.replace(".json", ".emu.json"))
        alpha, beta, pts = fit_alpha_beta(sizes)
        fits[rate] = (alpha, beta)
        print(f"### alpha, beta over the {rate} link (2 nodes; iperf3 measured {emu['measured_mbit']} Mbit/s)\n")
        print(table(["fp32 bytes", "time ms", "fit ms"],
                    [[f"{s:,.0f}", f"{t * 1e3:.2f}", f"{(2 * alpha + 2 * s / beta) * 1e3:.2f}"] for s, t in pts]))
        print(f"\nalpha = {alpha * 1e6:.0f} us, beta = {beta / 1e6:.2f} MB/s = {beta * 8 / 1e6:.1f} Mbit/s "
              f"({100 * beta * 8 / 1e6 / emu['measured_mbit']:.0f} % of iperf3's rate)\n")
    plot_rows = []
    for path in sorted(glob.glob(os.path.join(A.out, "*n-*-ptb-*.json"))):
        if path.endswith(".emu.json"):
            continue
        name = os.path.basename(path)[:-5]
        nodes, rate, recipe = int(name.split("n-")[0]), name.split("-")[1], name.split("-", 2)[2]
        step, emu = load(path), load(path.replace(".json", ".emu.json"))
        if not step or not emu:
            print(f"{name}: no result (yet)\n")
            continue
        rows = {r["scheme"]: r for r in step["rows"]}
        base = rows["none"]["overlapped_ms"]
        shared = " (4 ranks on 2 cores: cores shared)" if nodes > 2 else ""
        print(f"### {recipe}, {nodes} nodes x 1 rank x 1 thread, {rate} links{shared}; iperf3 "
              f"{emu['measured_mbit']} Mbit/s; {sum(n['bytes_in'] for n in emu['per_node']) / 1e9:.2f} GB crossed "
              f"the links\n")
        header = ["scheme", "compute ms", "step ms", "after-bwd ms", "comm ms", "hidden %", "wire MB/step",
                  "rows MB/step", "none ÷ scheme"]
        pred = {}
        if nodes in (2, 4) and rate in fits:
            header += ["model s=0 ms", "model s=1 ms", "measured ÷ model s=0", "slowdown k",
                       "model s=0, codecs × k", "measured ÷ it"]
        out = []
        for s in SCHEMES:
            r = rows.get(s)
            if not r:
                continue
            line = [s, f"{r['compute_ms']:.0f}", f"{r['overlapped_ms']:.0f}", f"{r['after_bwd_ms']:.0f}",
                    f"{r['comm_ms']:.0f}", f"{r['hidden_pct']}", f"{r['wire_MB_per_step']:.2f}",
                    f"{r.get('row_MB_per_step', 0):.3f}", f"{base / r['overlapped_ms']:.2f}"]
            if nodes in (2, 4) and rate in fits:
                p0, p1, _ = predict(recipe, nodes, *fits[rate], r["compute_ms"], r.get("row_MB_per_step", 0))[s]
                k = rows["none"]["compute_ms"] / QUIET_1T_MS[recipe]
                pk = predict(recipe, nodes, *fits[rate], r["compute_ms"], r.get("row_MB_per_step", 0), k)[s][0]
                line += [f"{p0:.0f}", f"{p1:.0f}", f"{r['overlapped_ms'] / p0:.2f}", f"{k:.1f}", f"{pk:.0f}",
                         f"{r['overlapped_ms'] / pk:.2f}"]
            out.append(line)
            plot_rows.append((nodes, rate, recipe, s, r["overlapped_ms"], r["compute_ms"]))
        if A.short:  # scheme, compute, step, comm, hidden, wire, none ÷, model (codecs x k) s=0 and s=1, ÷ model
            keep = [0, 1, 2, 4, 5, 6, 8] + ([13, 10, 14] if len(header) > 9 else [])
            names = ["scheme", "compute", "step", "comm", "hidden %", "wire MB", "none ÷", "model s=0", "s=1",
                     "step ÷ model"]
            out = [[r[i] for i in keep] for r in out]
            header = names[:len(keep)]
            if len(keep) > 7:  # s=1 with the codecs scaled too
                for r, s_ in zip(out, [x for x in SCHEMES if x in rows]):
                    k = rows["none"]["compute_ms"] / QUIET_1T_MS[recipe]
                    r[8] = f"{predict(recipe, nodes, *fits[rate], rows[s_]['compute_ms'], rows[s_].get('row_MB_per_step', 0), k)[s_][1]:.0f}"
        print(table(header, out) + "\n")
    if A.plot and plot_rows:
        make_plot(plot_rows, A.plot)


def mbit(rate):
    return float(rate[:-4]) * (1000 if rate.endswith("gbit") else 1)


def make_plot(rows, png):
    """Step time per scheme, one panel per recipe (2 nodes), bars per rate, log scale."""
    data = os.path.splitext(png)[0] + ".dat"
    panels = []
    for recipe in ("ptb-small", "ptb-medium"):
        rates = sorted({r[1] for r in rows if r[0] == 2 and r[2] == recipe}, key=mbit)
        if not rates:
            continue
        block = [f"# scheme {' '.join(rates)} compute"]
        for s in SCHEMES:
            vals = [next((f"{r[4]:.1f}" for r in rows if r[0] == 2 and r[1] == q and r[2] == recipe and r[3] == s),
                         "NaN") for q in rates]
            comp = next((f"{r[5]:.1f}" for r in rows if r[0] == 2 and r[2] == recipe and r[3] == s), "NaN")
            block.append(f"{s} {' '.join(vals)} {comp}")
        panels.append((recipe, rates, "\n".join(block)))
    with open(data, "w") as f:
        f.write("\n\n\n".join(p[2] for p in panels) + "\n")
    script = [f"set terminal pngcairo size 1100,420 font ',10'", f"set output '{png}'",
              "set multiplot layout 1,%d" % len(panels), "set style data histograms",
              "set style histogram clustered gap 1", "set style fill solid 0.8 border -1", "set logscale y", "set yrange [100:*]",
              "set ylabel 'step time, ms (log)'", "set key top right", "set grid ytics"]
    for i, (recipe, rates, _) in enumerate(panels):
        cols = ", ".join(f"'{data}' index {i} using {j + 2}:xtic(1) title '{q} links'" for j, q in enumerate(rates))
        cols += f", '' index {i} using {len(rates) + 2} title 'compute only ({rates[0]} run)'"
        script += [f"set title '{recipe}: 2 emulated nodes x 1 rank x 1 thread (machine shared)'", f"plot {cols}"]
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    os.remove(data)
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
