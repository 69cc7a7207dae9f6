"""softmax: p[j] = exp(x[j] - max(x)) / sum_k exp(x[k] - max(x)), row by row.

Subtracting the row's maximum first keeps every exponent <= 0, so nothing overflows whatever
the logits' magnitude; -inf entries (masked positions) get probability 0. The sum of the
exponentials is accumulated in float64: over GPT-2's 50257 logits a float32 sum drifts by
about 1e-5 relative. `softmax_inplace` is the serial form the attention kernel applies to
each row of scores.
"""

import numpy as np
from numba import prange

from ._jit import helper, kernel
from .exp import exp32


@helper
def softmax_inplace(row, length):
    """Replace row[:length] (float32, contiguous) by its softmax."""
    top = row[0]
    for j in range(1, length):
        top = max(top, row[j])
    total = 0.0
    for j in range(length):
        e = exp32(row[j] - top)
        row[j] = e
        total += e
    inv_total = np.float32(1.0 / total)
    for j in range(length):
        row[j] *= inv_total


@kernel
def softmax(x):
    """x [n, m] float32 -> [n, m] float32, each row a probability distribution."""
    n, m = x.shape
    out = x.copy()
    for i in prange(n):
        softmax_inplace(out[i], m)
    return out
