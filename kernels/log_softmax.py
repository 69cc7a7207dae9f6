"""log_softmax_at: log p(target) = x[target] - log sum_j exp(x[j]), row by row, in float64.

What scoring needs is one entry of each row's log-softmax, the target token's, so the kernel
returns only those: it reads each row twice (its maximum, then the sum of the exponentials)
and writes nothing the size of the row. The maximum is subtracted first, so every exponent is
<= 0 and no magnitude overflows; a -inf logit has probability 0 (log p = -inf). The sum is
float64: over GPT-2's 50257 logits a float32 sum drifts by about 1e-5 relative, which would
be the whole error budget of a perplexity. Each exponential is exp32 of a float32 difference
(within 2 ulp), so the loop vectorises; its error in log p stays below 1e-6 absolute.
"""

import numpy as np
from numba import prange

from ._jit import kernel, ordered_helper
from .exp import exp32
from .softmax import row_max


@ordered_helper
def _log_prob(target_logit, top, total):
    """(x_t - max) - log(total) in float64, in that order: regrouped as x_t - (max + log(total))
    it would lose log(total) entirely beside logits of 1e30."""
    return (np.float64(target_logit) - np.float64(top)) - np.log(total)


@kernel
def log_softmax_at(logits, targets):
    """logits [n, vocab] float32, targets [n] int64 in 0..vocab-1 -> [n] float64, where
    out[i] = log_softmax(logits[i])[targets[i]]. A row of all -inf gives NaN."""
    n, vocab = logits.shape
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        row = logits[i]
        top = row_max(row, vocab)
        total = 0.0
        for j in range(vocab):
            total += exp32(row[j] - top)
        out[i] = _log_prob(row[targets[i]], top, total)
    return out
