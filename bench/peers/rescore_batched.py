#!/usr/bin/env python3
"""PyTorch peer of `manylm rescore`, batched the same way: the N hypotheses of an utterance are the lanes of one
batch, padded to the longest (padding input <eos>, padded targets masked out), from a fresh zero state; the model's
whole (T, N, V) output goes through log_softmax (inside the timing), the targets' log-probabilities are gathered,
masked and summed per lane. An adaptive softmax scores every position through RNNModel.nll (no (T, N, V) logits).

    python bench/peers/rescore_batched.py RUN NBEST OUT [--threads N]
"""
import torch

from rescore_common import main


def utterances(hyps):
    batch = []
    for h in hyps:
        if batch and h[1] != batch[-1][1]:
            yield batch
            batch = []
        batch.append(h)
    if batch:
        yield batch


def score_batch(model, batch, eos):
    lens = [len(ids) for _, _, ids in batch]
    T, B = max(lens), len(batch)
    x = torch.full((T, B), eos, dtype=torch.long)
    y = torch.full((T, B), eos, dtype=torch.long)
    for b, (_, _, ids) in enumerate(batch):
        seq = torch.tensor([eos] + ids, dtype=torch.long)
        x[:lens[b], b], y[:lens[b], b] = seq[:-1], seq[1:]
    mask = torch.arange(T).view(-1, 1) < torch.tensor(lens).view(1, -1)
    if model.adaptive:
        nll, _ = model.nll(x, model.init_hidden(B), y, reduction="none")
        lp = -nll.view(T, B)
    else:
        logits, _ = model(x, model.init_hidden(B))
        lp = torch.log_softmax(logits, dim=-1).gather(2, y.unsqueeze(2)).squeeze(2)
    return (-(lp * mask).sum(0)).tolist()


def score_all(model, hyps, eos):
    costs = []
    for batch in utterances(hyps):
        costs += score_batch(model, batch, eos)
    return costs


if __name__ == "__main__":
    main(score_all, __doc__)
