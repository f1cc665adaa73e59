#!/usr/bin/env python3
"""Hypotheses per second of `manylm rescore` against its two PyTorch peers on one n-best file, alternating
(manylm, per-sentence PyTorch, batched PyTorch) REPEATS times in one run, same threads; medians.

    python3 bench/rescore/compare.py --run RUN --nbest NBEST [--threads 2] [--repeats 3] [--python PY] [--json]

PY (default: the current PyTorch of bench/peers/setup_venv.sh) runs bench/peers/rescore_per_sentence.py (Kaldi's
compute_sentence_scores.py way: one hypothesis at a time) and bench/peers/rescore_batched.py (an utterance's
hypotheses as padded lanes); each times its scoring loop, log-softmax included. manylm's figure is what rescore
prints on stderr: its reading, tokenizing and scoring loop (model loading excluded, as for the peers). The costs
of every peer are checked against manylm's (largest relative difference printed). Also hypotheses per CPU second
(the process's CPU time over the same loop), steadier than wall time where other jobs share the cores.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def costs(path):
    return {p[0]: float(p[1]) for p in (l.split() for l in open(path)) if p}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--nbest", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--python")
    p.add_argument("--manylm", default=os.path.join(ROOT, "build", "manylm"))
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    py = a.python or subprocess.run(["bash", os.path.join(ROOT, "bench/peers/setup_venv.sh")], capture_output=True,
                                    text=True, check=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="manylm-rescore-cmp-")
    rates = {"manylm": [], "per_sentence": [], "batched": []}
    cpu = {"manylm": [], "per_sentence": [], "batched": []}  # hypotheses per CPU second (a shared machine)
    worst = {}
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    for _ in range(a.repeats):
        out = os.path.join(tmp, "manylm.txt")
        with open(out, "w") as f:
            r = subprocess.run([a.manylm, "rescore", "--model", a.run, "--nbest", a.nbest, "--threads",
                                str(a.threads)], stdout=f, stderr=subprocess.PIPE, text=True, check=True, env=env)
        rates["manylm"].append(float(re.search(r"([0-9.]+) hypotheses/s", r.stderr).group(1)))
        ref = costs(out)
        c = re.search(r"([0-9.]+) s of CPU", r.stderr)  # (binaries before it printed the CPU time: none)
        cpu["manylm"].append(len(ref) / float(c.group(1)) if c else float("nan"))
        for name in ("per_sentence", "batched"):
            pout = os.path.join(tmp, name + ".txt")
            r = subprocess.run([py, os.path.join(ROOT, "bench/peers", f"rescore_{name}.py"), a.run, a.nbest, pout,
                                "--threads", str(a.threads)], capture_output=True, text=True, check=True, env=env)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            rates[name].append(res["hyps_per_s"])
            cpu[name].append(res["hypotheses"] / res["cpu_seconds"])
            c = costs(pout)
            worst[name] = max(abs(c[k] - v) / abs(v) for k, v in ref.items())
            torch_version = res["torch"]
    med = {k: statistics.median(v) for k, v in rates.items()}
    medc = {k: statistics.median(v) for k, v in cpu.items()}
    result = {"hypotheses": len(ref), "threads": a.threads, "repeats": a.repeats, "torch": torch_version,
              "hyps_per_s": med, "all": rates, "hyps_per_cpu_s": medc, "all_cpu": cpu,
              "cpu_ratio_per_sentence": medc["manylm"] / medc["per_sentence"],
              "cpu_ratio_batched": medc["manylm"] / medc["batched"],
              "ratio_per_sentence": med["manylm"] / med["per_sentence"], "ratio_batched": med["manylm"] / med["batched"],
              "largest_relative_difference": worst}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"{result['hypotheses']} hypotheses, {a.threads} threads, torch {torch_version}, medians of {a.repeats}:")
        for k, v in med.items():
            print(f"  {k:13s} {v:10.1f} hypotheses/s")
        print(f"  per CPU second: manylm / per-sentence {result['cpu_ratio_per_sentence']:.2f}x, "
              f"/ batched {result['cpu_ratio_batched']:.2f}x")
        print(f"  manylm / per-sentence PyTorch {result['ratio_per_sentence']:.2f}x, "
              f"/ batched PyTorch {result['ratio_batched']:.2f}x; costs agree within {max(worst.values()):.1e}")


if __name__ == "__main__":
    main()
