"""layernorm: y = (x - mean(x)) / sqrt(var(x) + eps) * g + b, over the last axis of each row.

var is the biased variance (divided by n_embd, not n_embd - 1), as GPT-2's LayerNorm uses.
The mean and the variance are summed in float64, in two passes (mean, then the variance of
x - mean), and x - mean is formed in float64 too: GPT-2's residual stream carries values in
the thousands in a few dimensions, and a float32 mean of 768 values near 1e4 is off by about
1e-3, which would shift every output by as much. The cost is small beside the projections
(`python benchmarks/bench_kernels.py` prints each kernel's share of a forward).
"""

import numpy as np
from numba import prange

from ._jit import kernel


@kernel
def layernorm(x, g, b, eps):
    """x [n, d], g [d], b [d] float32, eps float -> [n, d] float32, each row normalised."""
    n, d = x.shape
    out = np.empty((n, d), dtype=np.float32)
    for i in prange(n):
        row = x[i]
        total = 0.0
        for k in range(d):
            total += row[k]
        mean64 = total / d
        squares = 0.0
        for k in range(d):
            centred = row[k] - mean64
            squares += centred * centred
        inv_std = 1.0 / np.sqrt(squares / d + eps)
        for k in range(d):
            out[i, k] = np.float32((row[k] - mean64) * inv_std) * g[k] + b[k]
    return out
