"""token_rank: where the actual token ranked among the model's predictions, row by row.

The rank of target t in a row x is 1 + the number of entries strictly greater than x[t]: the
most likely token has rank 1, and tokens of equal logit share the better rank. It compares
logits, not probabilities: the softmax is monotone, so the order is the same, and no
exponential is needed. One read of each row, nothing the size of a row is written.
"""

import numpy as np
from numba import prange

from ._jit import kernel


@kernel
def token_rank(logits, targets):
    """logits [n, vocab] float32, targets [n] int64 in 0..vocab-1 -> [n] int64, where
    out[i] = 1 + #{j : logits[i, j] > logits[i, targets[i]]}."""
    n, vocab = logits.shape
    out = np.empty(n, dtype=np.int64)
    for i in prange(n):
        row = logits[i]
        target_logit = row[targets[i]]
        above = 0
        for j in range(vocab):
            above += row[j] > target_logit
        out[i] = above + 1
    return out
