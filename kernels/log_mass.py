"""log_mass: log of the probability that the next token is one of a set, row by row.

log sum_{j in set} softmax(x)_j = (m_in - m) + log sum_{j in set} exp(x_j - m_in)
                                              - log sum_j exp(x_j - m),
with m the row's maximum and m_in the set's. Subtracting the set's own maximum keeps its sum
at least 1, so a set far less likely than the rest (whose exponentials would all underflow
beside m) still gets its log-probability instead of -inf. Word surprisal uses it for the
mass of the tokens that begin a new word (gpt2numba/words.py). Sums are float64.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .exp import exp32
from .softmax import row_max

MINUS_INF = np.float32(-np.inf)


@kernel
def log_mass(logits, members):
    """logits [n, vocab] float32, members [vocab] bool -> [n] float64: log of the softmax mass
    of logits[i] on the entries j with members[j]; -inf when no entry is a member."""
    n, vocab = logits.shape
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        row = logits[i]
        top = row_max(row, vocab)
        top_in = MINUS_INF
        for j in range(vocab):
            if members[j] and row[j] > top_in:
                top_in = row[j]
        if top_in == MINUS_INF:
            out[i] = -np.inf
            continue
        total = 0.0
        inside = 0.0
        for j in range(vocab):
            total += exp32(row[j] - top)
            if members[j]:
                inside += exp32(row[j] - top_in)
        out[i] = (np.float64(top_in) - np.float64(top)) + np.log(inside) - np.log(total)
    return out
