#!/usr/bin/env python3
"""N-best lists from Penn Treebank test sentences, and how often a set of costs picks the original sentence.

    python3 bench/rescore/nbest.py make --text TEST.txt --out NBEST [--ref REF] [--n 20] [--sentences 1000] [--seed 1]
    python3 bench/rescore/nbest.py accuracy --nbest NBEST --ref REF --costs COSTS [--unigram TRAIN.txt]

make: for each of the first --sentences lines of TEST, an utterance `ptb-test-NNNNN` with --n hypotheses keyed
`ptb-test-NNNNN-K` (K = 1..n, Kaldi's uttid-N): the sentence itself at a seeded random position and n − 1 distinct
variants, each 1 to 3 seeded edits of it, as an ASR n-best list's near-misses. --edits confusable (default): a word
replaced by one within 10 frequency ranks of it in TEST (the unigram cost barely moves, as between acoustically
confusable words), or two neighbours swapped (30 %); --edits frequency: a word replaced by one drawn by frequency
from the first lines' words, or deleted (30 %): variants a language model tends to prefer (shorter, commoner).
REF gets `UTT KEY` of the original per utterance.
Every draw comes from random.Random(seed): the same arguments give the same files.

accuracy: the share of utterances whose lowest cost (COSTS: `KEY cost` lines, as manylm rescore writes) is the
original; with --unigram, the same for a unigram model of TRAIN (add-one smoothed, <eos> counted once a line, words
outside its vocabulary as <unk>) as the baseline. Prints one JSON line.
"""
import argparse
import collections
import json
import math
import random


def make(a):
    every = [l.split() for l in open(a.text, encoding="utf-8") if l.split()]
    lines = every[:a.sentences]
    counts = collections.Counter(w for l in every for w in l)
    by_rank = [w for w, _ in counts.most_common()]
    rank = {w: i for i, w in enumerate(by_rank)}
    rng = random.Random(a.seed)

    def confusable(w):  # a word of about the same frequency (as an acoustic confusion keeps the unigram cost)
        r = rank[w] + rng.choice([k for k in range(-10, 11) if k and 0 <= rank[w] + k < len(by_rank)])
        return by_rank[r]

    with open(a.out, "w") as out, open(a.ref or a.out + ".ref", "w") as ref:
        for i, words in enumerate(lines):
            utt = f"ptb-test-{i:05d}"
            variants, seen = [], {tuple(words)}
            pool = [w for l in lines for w in l]
            tries = 0
            while len(variants) < a.n - 1 and tries < 100 * a.n:
                tries += 1
                v = list(words)
                for _ in range(rng.randint(1, 3)):
                    if not v:
                        break
                    i = rng.randrange(len(v))
                    if a.edits == "frequency" and rng.random() < 0.3:
                        del v[i]
                    elif a.edits == "frequency":
                        v[i] = rng.choice(pool)
                    elif rng.random() < 0.3 and len(v) > 1:  # confusable: swap two neighbours
                        j = min(i + 1, len(v) - 1) if i + 1 < len(v) else i - 1
                        v[i], v[j] = v[j], v[i]
                    else:
                        v[i] = confusable(v[i])
                if tuple(v) not in seen:
                    seen.add(tuple(v))
                    variants.append(v)
            at = rng.randrange(len(variants) + 1)
            hyps = variants[:at] + [words] + variants[at:]
            for k, h in enumerate(hyps, 1):
                out.write(" ".join([f"{utt}-{k}"] + h) + "\n")
            ref.write(f"{utt} {utt}-{at + 1}\n")


def read_costs(path):
    return {p[0]: float(p[1]) for p in (l.split() for l in open(path)) if p}


def accuracy(costs, nbest, ref):
    best = {}
    for key, words in nbest:
        utt = key.rsplit("-", 1)[0]
        if utt not in best or costs[key] < best[utt][0]:
            best[utt] = (costs[key], key)
    return sum(best[u][1] == k for u, k in ref.items()) / len(ref)


def unigram_costs(train, nbest):
    counts = collections.Counter()
    for line in open(train, encoding="utf-8"):
        counts.update(line.split() + ["<eos>"])
    total, V = sum(counts.values()), len(counts) + 1
    cost = lambda w: -math.log((counts.get(w, counts.get("<unk>", 0)) + 1) / (total + V))
    return {key: sum(cost(w) for w in words + ["<eos>"]) for key, words in nbest}


def acc(a):
    nbest = [(p[0], p[1:]) for p in (l.split() for l in open(a.nbest, encoding="utf-8")) if p]
    ref = dict(l.split() for l in open(a.ref) if l.strip())
    res = {"utterances": len(ref), "hypotheses": len(nbest),
           "one_best_is_original": accuracy(read_costs(a.costs), nbest, ref)}
    if a.unigram:
        res["unigram_one_best_is_original"] = accuracy(unigram_costs(a.unigram, nbest), nbest, ref)
    print(json.dumps(res))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--text", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--ref")
    m.add_argument("--n", type=int, default=20)
    m.add_argument("--sentences", type=int, default=1000)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--edits", choices=["confusable", "frequency"], default="confusable")
    c = sub.add_parser("accuracy")
    c.add_argument("--nbest", required=True)
    c.add_argument("--ref", required=True)
    c.add_argument("--costs", required=True)
    c.add_argument("--unigram")
    a = p.parse_args()
    make(a) if a.cmd == "make" else acc(a)


if __name__ == "__main__":
    main()
