"""entropy: H(p) = -sum_j p_j log p_j of each row's softmax, in nats, float64.

With d_j = x_j - max(x), e_j = exp(d_j) and s = sum_j e_j, p_j = e_j / s and
log p_j = d_j - log s, so H = log s - (sum_j e_j d_j) / s: one pass for the maximum, one for
both sums, and nothing the size of a row is written. The sums are float64, as in log_softmax.
An entry of probability 0 (a -inf logit, or an exponential below float32's range) adds
nothing: it is skipped, since 0 * -inf would be NaN.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .exp import exp32
from .softmax import row_max

ZERO = np.float32(0.0)


@kernel
def entropy(logits):
    """logits [n, vocab] float32 -> [n] float64: the entropy of softmax(logits[i]), nats."""
    n, vocab = logits.shape
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        row = logits[i]
        top = row_max(row, vocab)
        total = 0.0
        weighted = 0.0   # sum_j e_j d_j
        for j in range(vocab):
            d = row[j] - top
            e = exp32(d)
            total += e
            weighted += np.float64(e) * np.float64(d) if e > ZERO else 0.0
        out[i] = np.log(total) - weighted / total
    return out
