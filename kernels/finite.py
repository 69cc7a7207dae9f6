"""first_nonfinite: where the first NaN or infinity of an array is, or -1 if there is none.

Used on every weight at load: one NaN in wte turns every logit into NaN, and the argmax of NaN
logits is token 0. An array longer than one chunk is cut into chunks checked in parallel, each
first summed as x * 0, which is 0 for every finite x and NaN for inf and NaN (the fastmath
flags leave out nnan and ninf, so the compiler may not fold it to 0): a branch-free loop that
vectorises and runs at memory speed. Only a chunk whose sum is NaN is scanned again for the
index. Shorter arrays (biases, norms) are scanned serially, without starting the threads.
"""

import numpy as np
from numba import prange

from ._jit import helper, kernel

ZERO = np.float32(0.0)
CHUNK = 1 << 16  # elements per parallel task: 256 KiB of float32


@helper
def _first_in(x, start, stop):
    """Index of the first non-finite x[start:stop], or -1."""
    for i in range(start, stop):
        if not np.isfinite(x[i]):
            return i
    return -1


@kernel
def first_nonfinite(x):
    """x [n] float32 (C-contiguous, read-only or not) -> int: the flat index of its first NaN
    or +-inf, or -1 if every element is finite (-0.0 and subnormals are finite)."""
    n = x.size
    if n <= CHUNK:  # biases and norms: starting the threads would cost more than the scan
        return _first_in(x, 0, n)
    n_chunks = (n + CHUNK - 1) // CHUNK
    firsts = np.full(n_chunks, -1, dtype=np.int64)
    for c in prange(n_chunks):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        poison = ZERO
        for i in range(start, stop):
            poison += x[i] * ZERO
        if poison != poison:
            firsts[c] = _first_in(x, start, stop)
    for c in range(n_chunks):
        if firsts[c] >= 0:
            return firsts[c]
    return -1
