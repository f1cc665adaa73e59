"""The one PyTorch model manylm is compared with: pytorch/examples word_language_model's RNNModel
(encoder → nn.RNN/nn.LSTM/nn.GRU → decoder, same attribute names, so a manylm model.safetensors loads
into it with load_state_dict(strict=True)), with Zaremba dropout after the embedding, between layers and
before the decoder. Used by torch_lm.py (the training peer), load_in_pytorch.py (loading a manylm run)
and tests/golden/make_golden.py (the golden files; dropout 0 there).
"""
import torch
import torch.nn as nn

RNN_TYPE = {"lstm": "LSTM", "gru": "GRU", "elman": "RNN"}  # manylm's --cell → pytorch/examples' rnn_type


class RNNModel(nn.Module):
    def __init__(self, cell, ntoken, ninp, nhid, nlayers, dropout=0.0, tie_weights=False, nonlinearity="tanh"):
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
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.cell, self.nhid, self.nlayers = cell, nhid, nlayers

    @classmethod
    def from_config(cls, cfg, ntoken):
        """The model of a manylm config.json or recipe (keys as manylm's long options)."""
        return cls(cfg["cell"], ntoken, cfg["embed"], cfg["hidden"], cfg["layers"], dropout=cfg.get("dropout", 0.0),
                   tie_weights=cfg.get("tied", False), nonlinearity=cfg.get("activation", "tanh"))

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)), hidden

    def init_hidden(self, bsz):
        z = torch.zeros(self.nlayers, bsz, self.nhid)
        return (z, z.clone()) if self.cell == "lstm" else z
