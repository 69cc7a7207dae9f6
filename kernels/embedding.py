"""embedding: h[t] = wte[ids[t]] + wpe[t], token embedding plus learned position embedding."""

import numpy as np
from numba import prange

from ._jit import kernel


@kernel
def embedding(wte, wpe, ids):
    """wte [vocab, d], wpe [n_positions, d] float32, ids [n] int -> h [n, d] float32.

    ids must be in [0, vocab) and n <= n_positions: the caller checks (the kernel does not).
    """
    n, d = ids.shape[0], wte.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for t in prange(n):
        token = wte[ids[t]]
        position = wpe[t]
        for k in range(d):
            out[t, k] = token[k] + position[k]
    return out
