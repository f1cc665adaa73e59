#!/usr/bin/env python3
"""cost_model.py — an alpha-beta cost model of manylm's data-parallel training step at N nodes.

It projects time per step and parallel efficiency, in weak scaling (every node keeps its per-node
batch), for each gradient scheme manylm has (none = fp32, fp16, int8, dyn8, threshold) and for the
collective algorithms each scheme can run on. It follows what src/mpi/reducer.cc does (commit
e00d3bc): the flat gradient is cut into buckets of max(--bucket-floats, 4096 N) values, so every rank
owns at least one 4096-value block of each bucket on the dense path, and each bucket is reduced on
its own, so latency terms are paid once per bucket. fp32 calls MPI_Iallreduce with a separate receive
buffer and copies the result back; Open MPI 4.1's libnbc then takes its default algorithm
(libnbc_iallreduce below), Rabenseifner for manylm's buckets at N >= 4.

Inputs are measured figures (per-step compute, codec ns per element) taken on the project's 2-core
machine and a network given by alpha (latency per message), beta (bandwidth per link) and gamma
(fp32 add per element). The share of communication hidden behind backward defaults to 0, the value
measured on that machine; every table also gives s = 1, the upper bound. docs/SCALING.md explains the
equations and where every input comes from.

Not a simulator: no link contention, no congestion in the network, no stragglers, no OS noise; the
collectives are the textbook alpha-beta costs of the algorithms named. Standard library only.

    python3 bench/scaling/cost_model.py --recipe ptb-medium            # Markdown tables
    python3 bench/scaling/cost_model.py --recipe ptb-large --json      # every number, as JSON
"""
import argparse
import json
import math
import signal
import sys

# ---- inputs measured on the project's machine (2-core AMD EPYC Zen 5; see docs/SCALING.md) -------

# Model shapes from recipes/*.json. compute_ms: one training step (forward + backward + update) of
# the recipe's batch x bptt tokens on 2 threads, from `manylm bench train`; None = not measured,
# estimated from FLOPs relative to ptb-medium.
RECIPES = {
    "ptb-small": dict(layers=2, hidden=200, embed=200, vocab=10000, batch=20, bptt=20,
                      params=4_653_200, compute_ms=400 / 14601 * 1e3),
    "ptb-medium": dict(layers=2, hidden=650, embed=650, vocab=10000, batch=20, bptt=35,
                       params=19_780_400, compute_ms=700 / 4294 * 1e3),
    "ptb-large": dict(layers=2, hidden=1500, embed=1500, vocab=10000, batch=20, bptt=35,
                      params=66_034_000, compute_ms=None),
}
FLOPS_REFERENCE = "ptb-medium"  # the measured recipe an unmeasured one is scaled from

# Codec cost, ns per gradient value, one core: encode (with error feedback), decode, decode-and-add.
# From a timing loop over 4M values on one core while the other core was busy: upper bounds.
CODEC_NS = {
    "none": (0.35, 0.13, 0.18),
    "fp16": (0.35, 0.09, 0.09),
    "int8": (0.36, 0.06, 0.09),
    "dyn8": (0.98, 0.25, 0.31),
}
THRESHOLD_ENCODE_NS = 0.85          # per gradient value (adaptive tau: sample, quantile, select)
THRESHOLD_DECODE_ADD_NS_AT_1PCT = 0.03  # per gradient value, one message at density 1%

BLOCK = 4096  # values per scale (int8, dyn8) and the chunk granularity of the dense path
COPY_PER_GAMMA = 8 / 12  # fp32 path's copy of the result back (8 bytes per value) against gamma's 12
LIBNBC_SMALL_BYTES = 65536  # libnbc's MPI_Iallreduce takes the binomial tree below this (and below 4 ranks)


def count_params(r):
    """LSTM with two bias vectors per layer (PyTorch layout), embedding, decoder with bias."""
    n, inp = 0, r["embed"]
    for _ in range(r["layers"]):
        n += 4 * r["hidden"] * (inp + r["hidden"]) + 2 * 4 * r["hidden"]
        inp = r["hidden"]
    return n + r["vocab"] * r["embed"] + r["hidden"] * r["vocab"] + r["vocab"]


for _name, _r in RECIPES.items():  # the parameter counts above follow from the shapes
    assert count_params(_r) == _r["params"], _name


def flops_per_token(r):
    """3 (forward + two backward products) x 2 (multiply-add) x multiply-adds per token."""
    macs, inp = 0, r["embed"]
    for _ in range(r["layers"]):
        macs += 4 * r["hidden"] * (inp + r["hidden"])
        inp = r["hidden"]
    return 3 * 2 * (macs + r["hidden"] * r["vocab"])


def dense_bytes(codec, m):
    """Bytes that m values encode to (src/mpi/compress.cc dense_bytes)."""
    if codec == "none":
        return 4 * m
    if codec == "fp16":
        return 2 * m
    return m + 4 * math.ceil(m / BLOCK)


def log2_ceil(n):
    return (n - 1).bit_length()


def bucket_size(bucket_floats, N):
    """Values per bucket: reducer.cc takes max(--bucket-mb worth of floats, one codec block per rank)."""
    return max(bucket_floats, BLOCK * N)


def libnbc_iallreduce(N, L, in_place=False):
    """Open MPI 4.1 libnbc's default MPI_Iallreduce algorithm for L fp32 values on N ranks (commutative
    op): binomial below 4 ranks, under 64 KiB, or in place; else Rabenseifner when L >= the largest
    power of two <= N; else ring. manylm calls it out of place since e00d3bc."""
    if in_place or N < 4 or 4 * L < LIBNBC_SMALL_BYTES:
        return "binomial"
    return "rabenseifner" if L >= 1 << (N.bit_length() - 1) else "ring"


# ---- collective costs, per bucket: (latency s, critical-path wire bytes, cpu s) -------------------

def allreduce_fp32(alg, N, L, net):
    """MPI_Iallreduce of L fp32 values. gamma: the reduction's fp32 add per value. Ring and Rabenseifner
    run out of place (manylm since e00d3bc; the ring through the MCA override), so the copy of the L
    values back into the gradient is added. Binomial is what in-place calls got before e00d3bc (no copy)
    and what libnbc still takes below 4 ranks (out of place since e00d3bc: copy)."""
    a, g, S = net["alpha"], net["gamma"], 4.0 * L
    copy = COPY_PER_GAMMA * L * g
    if alg == "ring":
        return 2 * (N - 1) * a, 2 * (N - 1) / N * S, (N - 1) / N * L * g + copy
    if alg == "rabenseifner":
        # Open MPI (libnbc redscat_allgather, coll/base likewise): fold to p2 = 2^floor(log2 N) ranks
        # by a half-vector exchange, a reduction of the half and a send of the half back (2 messages,
        # S/2 + S/2 bytes), recursive halving + doubling among p2, then the full result to the r
        # removed ranks (1 message, S bytes).
        p2 = 1 << (N.bit_length() - 1)
        lat = 2 * math.log2(p2) * a
        wire = 2 * (p2 - 1) / p2 * S
        cpu = (p2 - 1) / p2 * L * g + copy
        if N != p2:
            lat += 3 * a
            wire += 2 * S
            cpu += 0.5 * L * g
        return lat, wire, cpu
    if alg == "binomial":
        # reduce up a binomial tree, broadcast down it, full vector at every hop
        k = log2_ceil(N)
        return 2 * k * a, 2 * k * S, k * L * g + (copy if N < 4 else 0.0)
    raise ValueError(alg)


def dense_path(codec, ag, N, L, net, ns):
    """manylm's dense path: reduce-scatter by MPI_Ialltoallv of encoded chunks, owner decodes and sums
    in fp32, re-encodes, MPI_Iallgatherv. Chunks are whole 4096-value blocks (static_range)."""
    a = net["alpha"]
    enc, dec, dec_add = ns
    blocks = math.ceil(L / BLOCK)
    cmax = min(L, math.ceil(blocks / N) * BLOCK)   # largest chunk (elements)
    cmin = min(L, (blocks // N) * BLOCK)           # smallest chunk, 0 when blocks < N
    # reduce-scatter: the largest owner receives N-1 chunks; every rank sends all but its own
    rs = max((N - 1) * dense_bytes(codec, cmax), dense_bytes(codec, L) - dense_bytes(codec, cmin))
    # all-gather: the largest owner sends its chunk N-1 times (linear) / every rank receives the rest
    agb = max((N - 1) * dense_bytes(codec, cmax), dense_bytes(codec, L) - dense_bytes(codec, cmin))
    lat = (N - 1) * a + ((N - 1) * a if ag == "linear" else log2_ceil(N) * a)
    cpu = (enc * L + dec_add * N * cmax + enc * cmax + dec * L) * 1e-9
    return lat, rs + agb, cpu


def threshold_path(ag, N, L, d, net, thr):
    """Strom: each rank's message (tau, count, then index<<1|sign per sent value: 4 bytes) goes to all
    by MPI_Iallgather (the counts) + MPI_Iallgatherv; every rank adds all N messages."""
    a = net["alpha"]
    enc_ns, dec1_ns = thr
    words = 2 + d * L
    steps = (N - 1) if ag == "linear" else log2_ceil(N)
    lat = 2 * steps * a
    wire = (N - 1) * 4.0 + (N - 1) * 4.0 * words
    cpu = (enc_ns * L + N * dec1_ns * (d / 0.01) * L) * 1e-9
    return lat, wire, cpu


# ---- the step ------------------------------------------------------------------------------------

def buckets(n, size):
    out, end = [], n
    while end > 0:
        b = max(0, end - size)
        out.append(end - b)
        end = b
    return out


def fp32_today(alg):
    """Marker (N, bucket lengths) -> True where libnbc's default takes alg for every bucket."""
    return lambda N, bl: N > 1 and all(libnbc_iallreduce(N, L) == alg for L in bl)


def schemes(densities):
    """(key, scheme label, collective label, manylm-today marker (N, bucket lengths) -> bool,
    cost function (N, L, net, args))."""
    always = lambda N, bl: True  # noqa: E731
    never = lambda N, bl: False  # noqa: E731
    rows = [
        ("none/ring", "fp32 (none)", "ring all-reduce", fp32_today("ring"),
         lambda N, L, net, A: allreduce_fp32("ring", N, L, net)),
        ("none/rab", "fp32 (none)", "Rabenseifner all-reduce", fp32_today("rabenseifner"),
         lambda N, L, net, A: allreduce_fp32("rabenseifner", N, L, net)),
        ("none/binomial", "fp32 (none)", "binomial reduce+bcast (N < 4; in place before e00d3bc)",
         fp32_today("binomial"), lambda N, L, net, A: allreduce_fp32("binomial", N, L, net)),
    ]
    for codec, label in (("none", "fp32 --deterministic"), ("fp16", "fp16"), ("int8", "int8"),
                         ("dyn8", "dyn8")):
        for ag, aglabel, today in (("linear", "a2a + linear all-gather", always),
                                   ("rd", "a2a + rec.-doubling all-gather", never)):
            rows.append((f"{'none-det' if codec == 'none' else codec}/{ag}", label, aglabel, today,
                         (lambda c, g: lambda N, L, net, A: dense_path(c, g, N, L, net, A.codec_ns[c]))(codec, ag)))
    for d in densities:
        for ag, aglabel, today in (("linear", "linear all-gather", always),
                                   ("rd", "rec.-doubling all-gather", never)):
            rows.append((f"threshold-{d:g}/{ag}", f"threshold d={d * 100:g}%", aglabel, today,
                         (lambda dd, g: lambda N, L, net, A: threshold_path(g, N, L, dd, net, A.threshold_ns))(d, ag)))
    return rows


def reduction(fn, N, bucket_lengths, net, A):
    """One step's reduction: (latency s, wire bytes, cpu s), summed over buckets; nothing at N = 1."""
    lat = wire = cpu = 0.0
    if N > 1:
        for L in bucket_lengths:
            l_, w_, c_ = fn(N, L, net, A)
            lat, wire, cpu = lat + l_, wire + w_, cpu + c_
    return lat, wire, cpu


def exposed(t_comm, t_bwd, share):
    """Communication time the step waits for. share = fraction of t_comm hidden behind backward
    (0: none, as measured on the project's machine; 1: all of it that fits in backward, the upper
    bound); never less than what does not fit in backward."""
    return max(t_comm - t_bwd, (1.0 - share) * t_comm, 0.0)


def model(A):
    r = RECIPES[A.recipe]
    n = A.params if A.params else r["params"]
    tokens = r["batch"] * r["bptt"]
    if A.compute_ms:
        comp_ms, comp_src = A.compute_ms, "given (--compute-ms)"
    elif r["compute_ms"] is not None:
        comp_ms, comp_src = r["compute_ms"], "measured (bench train, 2 threads)"
    else:
        ref = RECIPES[FLOPS_REFERENCE]
        ratio = (flops_per_token(r) * tokens) / (flops_per_token(ref) * ref["batch"] * ref["bptt"])
        comp_ms, comp_src = ref["compute_ms"] * ratio, f"ESTIMATE: {FLOPS_REFERENCE} x FLOP ratio {ratio:.3f}"
    t_comp = comp_ms * A.compute_scale * 1e-3
    t_bwd = A.bwd_share * t_comp
    net = dict(alpha=A.alpha * 1e-6, beta=A.beta * 1e9, gamma=A.gamma * A.codec_scale * 1e-9)
    bls = {N: buckets(n, bucket_size(A.bucket_floats, N)) for N in A.nodes}
    embed_share = r["vocab"] * r["embed"] / n
    out = dict(
        inputs=dict(recipe=A.recipe, params=n, params_formula=count_params(r), tokens_per_step_per_node=tokens,
                    flops_per_token=flops_per_token(r), compute_ms_measured_or_estimated=comp_ms,
                    compute_source=comp_src, compute_scale=A.compute_scale, compute_ms=t_comp * 1e3,
                    backward_ms=t_bwd * 1e3, alpha_us=A.alpha, beta_GBps=A.beta, gamma_ns=A.gamma,
                    codec_scale=A.codec_scale,
                    hidden_share=A.hidden_share, bucket_floats=A.bucket_floats,
                    buckets={str(N): dict(count=len(bls[N]), values=bucket_size(A.bucket_floats, N))
                             for N in A.nodes},
                    embedding_share=embed_share, codec_ns=A.codec_ns, threshold_ns=A.threshold_ns,
                    nodes=A.nodes, densities=A.densities),
        rows=[])
    for N in A.nodes:
        bl = bls[N]
        for key, scheme, coll, today, fn in schemes(A.densities):
            lat, wire, cpu = reduction(fn, N, bl, net, A)
            t_wire = wire / net["beta"]
            t_comm = lat + t_wire + cpu
            e = {}
            for name, s in (("none", 0.0), ("share", A.hidden_share), ("full", 1.0)):
                x = exposed(t_comm, t_bwd, s)
                e[name] = dict(exposed_ms=x * 1e3, step_ms=(t_comp + x) * 1e3, efficiency=t_comp / (t_comp + x),
                               tokens_per_s=N * tokens / (t_comp + x))
            out["rows"].append(dict(nodes=N, key=key, scheme=scheme, collective=coll, manylm_today=today(N, bl),
                                    latency_ms=lat * 1e3, wire_ms=t_wire * 1e3, cpu_ms=cpu * 1e3,
                                    comm_ms=t_comm * 1e3, wire_MB_per_node=wire / 1e6, overlap=e))
    # threshold crossover against fp32 ring and int8 (both in bytes and in time)
    cross = []
    for N in A.nodes:
        if N == 1:
            continue
        bl = bls[N]

        def tot(fn):
            lat, wire, cpu = reduction(fn, N, bl, net, A)
            return lat + wire / net["beta"] + cpu, wire
        t_ring, b_ring = tot(lambda N_, L, net_, A_: allreduce_fp32("ring", N_, L, net_))
        t_int8, b_int8 = tot(lambda N_, L, net_, A_: dense_path("int8", "linear", N_, L, net_, A_.codec_ns["int8"]))
        t0, _ = tot(lambda N_, L, net_, A_: threshold_path("linear", N_, L, 0.0, net_, A_.threshold_ns))
        t1, _ = tot(lambda N_, L, net_, A_: threshold_path("linear", N_, L, 1.0, net_, A_.threshold_ns))
        slope = t1 - t0  # threshold time is linear in d
        row = dict(nodes=N, d_star_bytes_vs_fp32_ring=2.0 / N,
                   d_star_bytes_vs_int8=(1 + 4 / BLOCK) / (2.0 * N),
                   d_star_time_vs_fp32_ring=max(0.0, (t_ring - t0) / slope),
                   d_star_time_vs_int8=max(0.0, (t_int8 - t0) / slope),
                   fp32_ring_MB=b_ring / 1e6, int8_MB=b_int8 / 1e6)
        for d in A.densities:
            _, b = tot(lambda N_, L, net_, A_, dd=d: threshold_path("linear", N_, L, dd, net_, A_.threshold_ns))
            row[f"threshold_{d:g}_MB"] = b / 1e6
        cross.append(row)
    out["crossover"] = cross
    return out


# ---- printing ------------------------------------------------------------------------------------

def md(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def f1(x):
    return f"{x:.1f}"


def pct(x):
    return f"{100 * x:.1f}"


def print_markdown(m, summary_only):
    i = m["inputs"]
    s = i["hidden_share"]
    extra = 0 < s < 1  # an assumed share besides the measured 0 and the bound 1
    nodes = list(i["nodes"])
    bk = i["buckets"]
    sizes = []
    for N in nodes:
        b = bk[str(N)]
        txt = f"{b['count']} x {b['values']:,}"
        if not sizes or sizes[-1][1] != txt:
            sizes.append(([N], txt))
        else:
            sizes[-1][0].append(N)
    bucket_txt = "; ".join(f"N={','.join(str(N) for N in Ns)}: {t}" for Ns, t in sizes)
    print(f"## {i['recipe']}: {i['params']:,} parameters, {i['tokens_per_step_per_node']} tokens per step per node")
    print()
    print(f"compute {i['compute_ms']:.1f} ms/step per node ({i['compute_source']}"
          + (f", x{i['compute_scale']:g}" if i["compute_scale"] != 1 else "") + f"), backward {i['backward_ms']:.1f} ms; "
          f"alpha {i['alpha_us']:g} us, beta {i['beta_GBps']:g} GB/s, gamma {i['gamma_ns']:g} ns/value"
          + (f"; codec and gamma x{i['codec_scale']:g}" if i["codec_scale"] != 1 else "") + "; "
          f"buckets of max({i['bucket_floats']:,}, 4096 N) values ({bucket_txt}); "
          f"embedding (reduced last) = {100 * i['embedding_share']:.0f}% of the gradient.")
    print()
    keys = []
    for r in m["rows"]:
        if r["key"] not in [k for k, _ in keys]:
            keys.append((r["key"], r))
    modes = [("none", "0"), ("full", "1")] + ([("share", f"{s:g}")] if extra else [])
    print("### Parallel efficiency (%), weak scaling: s = 0, no overlap, as measured on the project's machine; "
          "s = 1, all of the reduction that fits in backward hidden (upper bound)"
          + (f"; s = {s:g} assumed, not measured" if extra else "") + "." + (" N = 1 is 100 by definition." if 1 in nodes else ""))
    print()
    multi = [N for N in nodes if N > 1]
    hdr = ["scheme", "collective"] + [f"N={N} s={t}" for N in multi for _, t in modes]
    rows = []
    for key, r0 in keys:
        mark = any(x["manylm_today"] for x in m["rows"] if x["key"] == key and x["nodes"] > 1)
        cells = [r0["scheme"], r0["collective"] + (" *" if mark else "")]
        for N in multi:
            r = next(x for x in m["rows"] if x["nodes"] == N and x["key"] == key)
            cells += [pct(r["overlap"][mode]["efficiency"]) for mode, _ in modes]
        rows.append(cells)
    print(md(hdr, rows))
    print()
    print("\\* what manylm runs today with Open MPI 4.1 defaults: fp32 MPI_Iallreduce out of place, libnbc's "
          "default (Rabenseifner for 4 MiB buckets at N >= 4, binomial below 4 ranks); MPI_Ialltoallv and "
          "MPI_Iallgatherv linear.")
    print()
    if summary_only:
        return
    for N in nodes:
        if N == 1:
            continue
        print(f"### N = {N} nodes (global batch {N}x per-node batch, {bk[str(N)]['count']} buckets)")
        print()
        hdr = ["scheme", "collective", "latency ms", "wire ms", "CPU ms", "comm ms", "wire MB/node",
               "E % s=0", "E % s=1"] + ([f"E % s={s:g} (assumed)"] if extra else []) + ["step ms s=0", "step ms s=1"]
        rows = []
        for r in m["rows"]:
            if r["nodes"] != N:
                continue
            o = r["overlap"]
            rows.append([r["scheme"], r["collective"] + (" *" if r["manylm_today"] else ""), f1(r["latency_ms"]),
                         f1(r["wire_ms"]), f1(r["cpu_ms"]), f1(r["comm_ms"]), f1(r["wire_MB_per_node"]),
                         pct(o["none"]["efficiency"]), pct(o["full"]["efficiency"])]
                        + ([pct(o["share"]["efficiency"])] if extra else [])
                        + [f1(o["none"]["step_ms"]), f1(o["full"]["step_ms"])])
        print(md(hdr, rows))
        print()
    if m["crossover"]:
        ds = i["densities"]
        print("### Threshold (Strom) against dense schemes: sparse all-gather volume grows with N")
        print()
        hdr = (["N", "fp32 ring MB/node", "int8 MB/node"] + [f"threshold {100 * d:g}% MB/node" for d in ds]
               + ["d* bytes vs fp32 ring (2/N)", "d* bytes vs int8 (~1/2N)", "d* time vs fp32 ring", "d* time vs int8"])
        rows = []
        for c in m["crossover"]:
            rows.append([c["nodes"], f1(c["fp32_ring_MB"]), f1(c["int8_MB"])]
                        + [f1(c[f"threshold_{d:g}_MB"]) for d in ds]
                        + [f"{100 * c['d_star_bytes_vs_fp32_ring']:.3g}%", f"{100 * c['d_star_bytes_vs_int8']:.3g}%",
                           f"{100 * c['d_star_time_vs_fp32_ring']:.3g}%", f"{100 * c['d_star_time_vs_int8']:.3g}%"])
        print(md(hdr, rows))
        print()
        print("d* = density below which threshold moves fewer bytes (or takes less time, codec included, "
              "linear all-gathers) than the scheme named; 0% = never.")
        print()


def parse_list(s, conv):
    return [conv(x) for x in s.split(",") if x.strip()]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="ptb-medium")
    p.add_argument("--nodes", default="8,64,576", help="node counts, comma-separated")
    p.add_argument("--alpha", type=float, default=1.5, help="latency per message, microseconds (FDR56 MPI)")
    p.add_argument("--beta", type=float, default=6.8, help="link bandwidth, GB/s (56 Gb/s x 64/66 / 8)")
    p.add_argument("--gamma", type=float, default=0.25, help="fp32 add inside MPI's reduction, ns per value")
    p.add_argument("--hidden-share", type=float, default=0.0,
                   help="share of communication hidden behind backward, as `bench comm` reports it (0: measured "
                        "on the project's machine; s = 0 and s = 1 are always printed, another value adds columns)")
    p.add_argument("--bwd-share", type=float, default=2 / 3, help="backward's share of a step's compute")
    p.add_argument("--compute-ms", type=float, default=0.0, help="compute per step per node, ms (0: the recipe's)")
    p.add_argument("--compute-scale", type=float, default=1.0,
                   help="multiply compute per step (e.g. 5 for nodes 5x slower than the project's machine)")
    p.add_argument("--codec-scale", type=float, default=1.0,
                   help="multiply codec ns and gamma (e.g. for cores slower than the project's machine)")
    p.add_argument("--params", type=int, default=0, help="gradient values (0: the recipe's)")
    p.add_argument("--bucket-floats", type=int, default=1 << 20,
                   help="values per bucket (--bucket-mb 4); manylm raises it to 4096 N at N ranks")
    p.add_argument("--densities", default="0.01,0.001", help="threshold densities, comma-separated")
    p.add_argument("--codec-ns", dest="codec_overrides", action="append", default=[], metavar="CODEC=ENC,DEC,DEC_ADD",
                   help="override a dense codec's ns per value, e.g. int8=0.36,0.06,0.09 (repeatable)")
    p.add_argument("--threshold-ns", default=f"{THRESHOLD_ENCODE_NS},{THRESHOLD_DECODE_ADD_NS_AT_1PCT}",
                   metavar="ENC,DEC_ADD_AT_1PCT", help="threshold encode and decode-add (one message at 1%%), ns per value")
    p.add_argument("--summary", action="store_true", help="print only the efficiency summary")
    p.add_argument("--json", action="store_true", help="print every number as JSON")
    A = p.parse_args(argv)
    A.nodes = parse_list(A.nodes, int)
    A.densities = parse_list(A.densities, float)
    A.codec_ns = dict(CODEC_NS)
    for spec in A.codec_overrides:
        name, _, vals = spec.partition("=")
        v = tuple(parse_list(vals, float))
        if name not in CODEC_NS or len(v) != 3:
            p.error(f"--codec-ns {spec}: want one of {','.join(CODEC_NS)} = three numbers")
        A.codec_ns[name] = v
    A.threshold_ns = tuple(x * A.codec_scale for x in parse_list(A.threshold_ns, float))
    A.codec_ns = {k: tuple(x * A.codec_scale for x in v) for k, v in A.codec_ns.items()}
    if any(N < 1 for N in A.nodes) or not (0 <= A.hidden_share <= 1) or A.beta <= 0 or len(A.threshold_ns) != 2:
        p.error("nodes must be >= 1, --hidden-share in [0, 1], --beta > 0, --threshold-ns two numbers")
    m = model(A)
    if A.json:
        json.dump(m, sys.stdout, indent=1)
        print()
    else:
        print_markdown(m, A.summary)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    main()
