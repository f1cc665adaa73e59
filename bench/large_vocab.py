#!/usr/bin/python3
"""The large-vocabulary measurements (adaptive softmax, sparse rows), one command, ratios from one run.

    python3 bench/large_vocab.py [--threads 2] [--repeats 5] [--steps 10] [--part wt2,vocab,ptb] [--json]

Runs `build/manylm bench train` (the trainer's own train_step) on:
  wt2    the medium LSTM on WikiText-2 with the full softmax and with adaptive softmaxes of several cutoffs:
         tokens/s and the adaptive step's speed-up over the full one;
  vocab  the medium LSTM (ptb-medium's model, B 20, T 35) on synthetic Zipf(1) ids: V = 10,000 with the full
         softmax; V = 100,000 (cutoffs 10000,50000) and V = 800,000 (cutoffs 20000,200000) adaptive: tokens/s and
         GFLOP/s of 800k as a share of 10k's, the embedding's phases at 800k against 100k, and parameter bytes
         against the process's peak resident memory (one case per process, so that is the case's own);
  ptb    ptb-medium against ptb-medium-adaptive: tokens/s.
Cases run one after the other (each a process of its own; their medians over --repeats): on a shared machine run
it with other jobs stopped. Prints a table per part, and with --json one object.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "manylm")


def bench(recipe, extra, a):
    cmd = [BIN, "bench", "train", "--recipe", os.path.join(ROOT, recipe), "--backend-list", "onednn",
           "--threads-list", str(a.threads), "--repeats", str(a.repeats), "--steps", str(a.steps), "--json"] + extra
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    row = json.loads(out)["rows"][0]
    row["command"] = " ".join(["build/manylm"] + cmd[1:])
    return row


def wt2(a):
    rows = {"full": bench("recipes/wt2-medium.json", [], a)}
    for cut in ("2000,10000", "1000,10000", "4000,20000", "2000,10000,20000"):
        rows[cut] = bench("recipes/wt2-medium.json", ["--output", "adaptive", "--cutoffs", cut], a)
    full = rows["full"]["tokens_per_s"]
    print(f"wt2-medium, {a.threads} threads: tokens/s (× the full softmax)")
    for k, r in rows.items():
        print(f"  {k:>18}: {r['tokens_per_s']:8.0f}  ×{r['tokens_per_s'] / full:5.2f}  "
              f"{r['gflops']:6.1f} GFLOP/s  output fwd+bwd {r['out_fwd_ms'] + r['out_bwd_ms']:7.1f} ms")
    return rows


def vocab(a):
    base = "recipes/ptb-medium.json"
    rows = {"10k full": bench(base, ["--vocab", "10000"], a),
            "100k adaptive": bench(base, ["--vocab", "100000", "--output", "adaptive", "--cutoffs", "10000,50000"], a),
            "800k adaptive": bench(base, ["--vocab", "800000", "--output", "adaptive", "--cutoffs", "20000,200000"], a)}
    r10, r100, r800 = rows["10k full"], rows["100k adaptive"], rows["800k adaptive"]
    print(f"medium LSTM on Zipf ids, {a.threads} threads")
    for k, r in rows.items():
        print(f"  {k:>14}: {r['tokens_per_s']:6.0f} tok/s {r['gflops']:6.1f} GFLOP/s | embed {r['embed_ms']:.2f} "
              f"embed_bwd {r['embed_bwd_ms']:.2f} update_rows {r['update_rows_ms']:.2f} update {r['update_ms']:.2f} ms"
              f" | params {r['param_mib']} MiB, peak RSS {r['peak_rss_mib']} MiB ({r['peak_rss_mib'] / r['param_mib']:.2f}×)")
    print(f"  800k ÷ 10k: tokens/s {r800['tokens_per_s'] / r10['tokens_per_s']:.3f}, "
          f"GFLOP/s {r800['gflops'] / r10['gflops']:.3f}")
    emb = lambda r: r["embed_ms"] + r["embed_bwd_ms"] + r["update_rows_ms"]
    print(f"  embedding phases (fwd + bwd + row update) 800k ÷ 100k: {emb(r800):.2f} / {emb(r100):.2f} ms = "
          f"{emb(r800) / emb(r100):.2f}")
    return rows


def ptb(a):
    rows = {"full": bench("recipes/ptb-medium.json", [], a),
            "adaptive": bench("recipes/ptb-medium-adaptive.json", [], a)}
    print(f"ptb-medium, {a.threads} threads: full {rows['full']['tokens_per_s']:.0f} tok/s, adaptive "
          f"{rows['adaptive']['tokens_per_s']:.0f} (×{rows['adaptive']['tokens_per_s'] / rows['full']['tokens_per_s']:.2f})")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--part", default="wt2,vocab,ptb")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    out = {"cpu": subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True,
                                 text=True).stdout.strip(), "threads": a.threads}
    for part in a.part.split(","):
        out[part] = {"wt2": wt2, "vocab": vocab, "ptb": ptb}[part](a)
        sys.stdout.flush()
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
