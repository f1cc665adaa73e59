#!/usr/bin/env python3
"""PyTorch peer of `manylm rescore`, one hypothesis at a time, as Kaldi's pytorchnn compute_sentence_scores.py
scores them: each hypothesis a batch of one from a fresh zero state, input <eos> + words, targets words + <eos>,
nn.CrossEntropyLoss(reduction='none') over the full softmax (log-softmax inside the timing), summed.

    python bench/peers/rescore_per_sentence.py RUN NBEST OUT [--threads N]
"""
import torch

from rescore_common import main


def score_all(model, hyps, eos):
    costs = []
    for _, _, ids in hyps:
        seq = torch.tensor([eos] + ids, dtype=torch.long)
        x, y = seq[:-1].view(-1, 1), seq[1:].view(-1, 1)
        loss, _ = model.nll(x, model.init_hidden(1), y, reduction="none")
        costs.append(loss.sum().item())
    return costs


if __name__ == "__main__":
    main(score_all, __doc__)
