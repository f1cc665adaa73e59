"""manylm from Python: a run trained by manylm, loaded once, scored and stepped with the GIL released.

    import manylm
    m = manylm.load("runs/ptb-small")            # weights="auto" | "best" | "average" | "last" | a file
    m.score(["the market fell", "market the fell"])   # log10 p(sentence, </s>) each, as KenLM's score
    m.perplexity(open("test.txt").read())        # as `manylm eval --text test.txt`
    state = m.initial_state(4)                   # (K, L, B, H) float32 zeros: K = 2 (h, c) for an LSTM
    logp, state = m.step([m.start] * 4, state)   # (B, V) log-probabilities of the next token
    m.sample("the market", length=20, top_k=40, seed=1)

Calls that compute are serialized (one OpenMP team per process); MPI is never initialized.
"""
from ._manylm import Error, Model

__all__ = ["Error", "Model", "load"]


def load(run_dir, weights="auto", threads=0):
    """The model of a manylm run directory; threads 0: every CPU this process may use."""
    return Model(str(run_dir), weights, threads)
