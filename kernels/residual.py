"""residual: h + f(h), the skip connection around each attention and MLP sub-block."""

import numpy as np
from numba import prange

from ._jit import kernel


@kernel
def residual(x, y):
    """x [n, d] + y [n, d] -> [n, d] float32."""
    n, d = x.shape
    out = np.empty((n, d), dtype=np.float32)
    for i in prange(n):
        for k in range(d):
            out[i, k] = x[i, k] + y[i, k]
    return out
