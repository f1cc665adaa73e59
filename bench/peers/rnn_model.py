"""The one PyTorch model manylm is compared with: pytorch/examples word_language_model's RNNModel
(encoder → nn.RNN/nn.LSTM/nn.GRU → decoder, same attribute names, so a manylm model.safetensors loads
into it with load_state_dict(strict=True)), with Zaremba dropout after the embedding, between layers and
before the decoder. The decoder is nn.Linear (full softmax) or, with output="adaptive",
nn.AdaptiveLogSoftmaxWithLoss (manylm's --output adaptive: decoder.head.weight, decoder.head.bias,
decoder.tail.{i}.0.weight, decoder.tail.{i}.1.weight). Used by torch_lm.py (the training peer),
load_in_pytorch.py (loading a manylm run) and tests/golden/make_golden.py (the golden files; dropout 0 there).

Scoring: nll(x, hidden, y) works with either decoder and is what callers use; forward() gives the full
softmax's logits only (an adaptive softmax has no (T, B, V) logits to return).
"""
import torch
import torch.nn as nn

RNN_TYPE = {"lstm": "LSTM", "gru": "GRU", "elman": "RNN"}  # manylm's --cell → pytorch/examples' rnn_type


def parse_cutoffs(v):
    """manylm's --cutoffs as config.json or a recipe holds it: a list of ints or a "2000,10000" string."""
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [int(c) for c in v.split(",") if c.strip()]
    return [int(c) for c in v]


class RNNModel(nn.Module):
    def __init__(self, cell, ntoken, ninp, nhid, nlayers, dropout=0.0, tie_weights=False, nonlinearity="tanh",
                 output="full", cutoffs=None, div_value=4.0, head_bias=False):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        between = dropout if nlayers > 1 else 0.0
        if cell == "lstm":
            self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=between)
        elif cell == "gru":
            self.rnn = nn.GRU(ninp, nhid, nlayers, dropout=between)
        elif cell == "elman":
            if nonlinearity not in ("tanh", "relu"):
                raise ValueError(f"torch.nn.RNN has no {nonlinearity} nonlinearity")
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=between)
        else:
            raise ValueError(f"unknown cell {cell!r} (elman, lstm or gru)")
        if output == "adaptive":
            if tie_weights:
                raise ValueError("tie_weights: not with an adaptive softmax (it has no V x H decoder to tie)")
            self.decoder = nn.AdaptiveLogSoftmaxWithLoss(nhid, ntoken, list(cutoffs), div_value=div_value,
                                                         head_bias=head_bias)
        elif output == "full":
            self.decoder = nn.Linear(nhid, ntoken)
            if tie_weights:
                self.decoder.weight = self.encoder.weight
        else:
            raise ValueError(f"unknown output {output!r} (full or adaptive)")
        self.cell, self.nhid, self.nlayers, self.adaptive = cell, nhid, nlayers, output == "adaptive"

    @classmethod
    def from_config(cls, cfg, ntoken):
        """The model of a manylm config.json or recipe (keys as manylm's long options)."""
        return cls(cfg["cell"], ntoken, cfg["embed"], cfg["hidden"], cfg["layers"], dropout=cfg.get("dropout", 0.0),
                   tie_weights=cfg.get("tied", False), nonlinearity=cfg.get("activation", "tanh"),
                   output=cfg.get("output", "full"), cutoffs=parse_cutoffs(cfg.get("cutoffs")),
                   div_value=float(cfg.get("div-value", 4.0)), head_bias=bool(cfg.get("head-bias", False)))

    def features(self, x, hidden):
        """The decoder's input (T, B, H), dropout applied, and the new hidden state."""
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.drop(out), hidden

    def forward(self, x, hidden):
        """Full softmax: logits (T, B, V) and the new hidden state."""
        if self.adaptive:
            raise TypeError("RNNModel.forward: an adaptive softmax has no logits; use nll()")
        out, hidden = self.features(x, hidden)
        return self.decoder(out), hidden

    def nll(self, x, hidden, y, reduction="mean"):
        """Cross-entropy in nats of the targets y (T, B), reduced over the T·B targets as F.cross_entropy's
        reduction ("mean", "sum" or "none": (T·B,)), and the new hidden state; either decoder. The full
        softmax scores its logits in float32 (as autocast callers need)."""
        out, hidden = self.features(x, hidden)
        if not self.adaptive:
            logits = self.decoder(out)
            return nn.functional.cross_entropy(logits.view(-1, logits.size(-1)).float(), y.reshape(-1),
                                               reduction=reduction), hidden
        logp, mean = self.decoder(out.reshape(-1, self.nhid), y.reshape(-1))  # log p(y), mean of −log p(y)
        if reduction == "mean":
            return mean, hidden
        return (-logp.sum() if reduction == "sum" else -logp), hidden

    def init_hidden(self, bsz):
        z = torch.zeros(self.nlayers, bsz, self.nhid)
        return (z, z.clone()) if self.cell == "lstm" else z
