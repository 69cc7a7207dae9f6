"""kl_divergence: KL(P || Q) = sum_j p_j (log p_j - log q_j) between two rows' softmaxes.

With d_j = x_j - max(x) for P's logits x and c_j = y_j - max(y) for Q's logits y,
e_j = exp(d_j), s = sum_j e_j and t = sum_j exp(c_j):

    KL = (sum_j e_j (d_j - c_j)) / s - log s + log t

three passes per pair of rows (the two maxima, then the three sums), nothing the size of a row
written, sums in float64. Identical rows give exactly 0. Entries where P is 0 add nothing
(skipped, since 0 * inf would be NaN); where Q is 0 and P is not, KL is +inf.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .exp import exp32
from .softmax import row_max

ZERO = np.float32(0.0)


@kernel
def kl_divergence(logits_p, logits_q):
    """logits_p, logits_q [n, vocab] float32 -> [n] float64: KL(softmax(logits_p[i]) ||
    softmax(logits_q[i])), nats."""
    n, vocab = logits_p.shape
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        x = logits_p[i]
        y = logits_q[i]
        top_x = row_max(x, vocab)
        top_y = row_max(y, vocab)
        total_p = 0.0
        total_q = 0.0
        weighted = 0.0   # sum_j e_j (d_j - c_j)
        for j in range(vocab):
            d = x[j] - top_x
            c = y[j] - top_y
            e = exp32(d)
            total_p += e
            total_q += exp32(c)
            weighted += np.float64(e) * (np.float64(d) - np.float64(c)) if e > ZERO else 0.0
        out[i] = weighted / total_p - np.log(total_p) + np.log(total_q)
    return out
