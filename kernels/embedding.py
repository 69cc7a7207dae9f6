"""embedding: h[t] = wte[ids[t]] + wpe[positions[t]], token embedding plus learned position
embedding. For one text the positions are 0..n-1; texts packed one after another each start
again at 0."""

import numpy as np
from numba import prange

from ._jit import kernel


@kernel
def embedding(wte, wpe, ids, positions):
    """wte [vocab, d], wpe [n_positions, d] float32, ids [n] int, positions [n] int
    -> h [n, d] float32.

    ids must be in [0, vocab) and positions in [0, n_positions): the caller checks (the kernel
    does not).
    """
    n, d = ids.shape[0], wte.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for t in prange(n):
        token = wte[ids[t]]
        position = wpe[positions[t]]
        for k in range(d):
            out[t, k] = token[k] + position[k]
    return out
