"""cross_entropy: H(P, Q) = -sum_j p_j log q_j between two rows' softmaxes, in nats.

Binoculars' cross-perplexity (Hans et al., 2024) is its mean over a text's positions, P the
observer's prediction and Q the performer's. With d_j = x_j - max(x) for P's logits x,
c_j = y_j - max(y) for Q's logits y, e_j = exp(d_j), s = sum_j e_j, t = sum_j exp(c_j):

    H(P, Q) = log t - (sum_j e_j c_j) / s

three passes per pair of rows, sums in float64, nothing the size of a row written. Entries
where P is 0 add nothing (0 * -inf would be NaN); where Q is 0 and P is not, H is +inf.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .exp import exp32
from .softmax import row_max

ZERO = np.float32(0.0)


@kernel
def cross_entropy(logits_p, logits_q):
    """logits_p, logits_q [n, vocab] float32 -> [n] float64: H(softmax(logits_p[i]),
    softmax(logits_q[i])) = -sum_j p_j log q_j, nats."""
    n, vocab = logits_p.shape
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        x = logits_p[i]
        y = logits_q[i]
        top_x = row_max(x, vocab)
        top_y = row_max(y, vocab)
        total_p = 0.0
        total_q = 0.0
        weighted = 0.0   # sum_j e_j c_j
        for j in range(vocab):
            c = y[j] - top_y
            e = exp32(x[j] - top_x)
            total_p += e
            total_q += exp32(c)
            weighted += np.float64(e) * np.float64(c) if e > ZERO else 0.0
        out[i] = np.log(total_q) - weighted / total_p
    return out
