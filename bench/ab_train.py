#!/usr/bin/env python3
"""ab_train.py — two manylm binaries (say, before and after a change) timed on `bench train` in one run.

Invocations alternate A, B, A, B, ... for each thread count, so that a slow spell of a shared machine falls on
both; each invocation is `bench train --repeats 1` (its own warm-up, then --steps timed steps), and the figure
per binary is the median step time over --runs invocations. Prints one table (and --json) with B/A.

Usage: bench/ab_train.py A_BINARY B_BINARY --recipe recipes/ptb-medium.json [--threads 1,2] [--backend onednn]
       [--runs 5] [--steps 6] [--json]
"""
import argparse
import json
import statistics
import subprocess
import sys


def one(binary, recipe, threads, backend, steps):
    out = subprocess.run([binary, "bench", "train", "--recipe", recipe, "--threads-list", str(threads),
                          "--backend-list", backend, "--repeats", "1", "--steps", str(steps), "--json"],
                         check=True, capture_output=True, text=True).stdout
    row = json.loads(out.strip().splitlines()[-1])["rows"][0]
    return float(row["step_ms"])  # a number, or (older binaries) a string


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--backend", default="onednn")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for th in [int(t) for t in a.threads.split(",")]:
        ms = {"a": [], "b": []}
        for _ in range(a.runs):
            for key in ("a", "b"):
                ms[key].append(one(getattr(a, key), a.recipe, th, a.backend, a.steps))
        ma, mb = statistics.median(ms["a"]), statistics.median(ms["b"])
        rows.append({"threads": th, "a_step_ms": ma, "b_step_ms": mb, "b_over_a": mb / ma,
                     "a_runs": ms["a"], "b_runs": ms["b"]})
    if a.json:
        print(json.dumps({"a": a.a, "b": a.b, "recipe": a.recipe, "backend": a.backend, "rows": rows}))
        return 0
    print(f"# bench train {a.recipe}, --gemm {a.backend}, median of {a.runs} alternating invocations")
    print(f"# A = {a.a}\n# B = {a.b}")
    print(f"{'threads':>7}  {'A step ms':>9}  {'B step ms':>9}  {'B/A':>6}")
    for r in rows:
        print(f"{r['threads']:>7}  {r['a_step_ms']:>9.2f}  {r['b_step_ms']:>9.2f}  {r['b_over_a']:>6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
