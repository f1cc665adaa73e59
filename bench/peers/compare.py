#!/usr/bin/python3
"""Peers in one run: manylm and PyTorch train the same recipe's step on the same machine, alternately,
so that every ratio compares runs that shared the machine's state.

    /usr/bin/python3 bench/peers/compare.py --recipe recipes/ptb-medium.json [--threads 2] [--repeats 3] [--steps 20]

Each repeat runs, in turn: `manylm bench train` (the trainer's own train_step; FP32, and bf16 when
manylm has it), PyTorch 1.13 from Debian (/usr/bin/python3), and the current PyTorch from PyPI in a
virtual environment (bench/peers/setup_venv.sh installs it) in FP32 and with bf16 autocast. Prints
medians of tokens/s and manylm's ratio to each peer, as Markdown (and --json).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--manylm", default=os.path.join(ROOT, "build", "manylm"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    venv_python = subprocess.run(["bash", os.path.join(HERE, "setup_venv.sh")], check=True, capture_output=True,
                                 text=True).stdout.strip()
    torch_lm = os.path.join(HERE, "torch_lm.py")
    peers = {
        "pytorch-1.13-fp32": ["/usr/bin/python3", torch_lm, a.recipe],
        "pytorch-current-fp32": [venv_python, torch_lm, a.recipe],
        "pytorch-current-bf16-autocast": [venv_python, torch_lm, a.recipe, "--autocast", "bf16"],
    }
    results = {name: [] for name in ["manylm-fp32", "manylm-bf16", *peers]}
    versions = {}
    for r in range(a.repeats):
        m = run_json([a.manylm, "bench", "train", "--recipe", a.recipe, "--threads-list", str(a.threads), "--repeats", "1",
                      "--steps", str(a.steps), "--backend-list", "onednn", "--precision-list", "fp32,bf16", "--json"])
        for row in m["rows"]:
            name = "manylm-" + row["precision"]
            results[name].append(float(row["tokens_per_s"]))
            versions[name] = f'{m["cpu"]}, {row["pct_peak"]} % of its {row["precision"]} peak'
        for name, cmd in peers.items():
            p = run_json(cmd + ["--time-steps", str(a.steps), "--threads", str(a.threads)])
            results[name].append(p["tokens_per_sec"])
            versions[name] = "torch " + p["torch"]
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()), file=sys.stderr)
    results = {k: v for k, v in results.items() if v}  # manylm-bf16 needs AVX512_BF16
    med = {k: statistics.median(v) for k, v in results.items()}
    if a.json:
        print(json.dumps({"recipe": a.recipe, "threads": a.threads, "repeats": a.repeats, "steps": a.steps,
                          "tokens_per_sec": med, "runs": results, "versions": versions}))
        return
    print(f"{a.recipe}, {a.threads} threads, median of {a.repeats} alternating repeats of {a.steps} steps\n")
    best = "manylm-bf16" if "manylm-bf16" in med else "manylm-fp32"
    print(f"| system | tokens/s | manylm FP32 ÷ this | {best} ÷ this | runs |")
    print("| --- | ---: | ---: | ---: | --- |")
    for k, v in med.items():
        print(f"| {k} ({versions[k]}) | {v:,.0f} | {med['manylm-fp32'] / v:.2f}× | {med[best] / v:.2f}× | "
              + ", ".join(f"{x:.0f}" for x in results[k]) + " |")


if __name__ == "__main__":
    main()
