"""transpose_checked: w [in, out] -> w.T [out, in] as a new array, its rows padded with zeros to
the length asked for, and where w's first NaN or infinity is.

The checkpoints store every projection as Conv1D, [in, out]; `linear` reads w[out, in] so that
each output is a dot product of two contiguous rows. The model transposes each projection once at
load, and since that pass reads every weight anyway, it also checks that they are finite (a NaN
weight would turn every logit into NaN): the check costs no extra read of the file.

The rows may be longer than `in` (linear.stored_row_length says when and why).

Schedule: the output rows are cut into bands of BAND rows, one parallel task each. A band reads
the source row by row (BAND contiguous floats of each of the `in` rows) and writes BAND output
rows side by side, one float to each per source row, so the BAND output lines it fills stay in
L1 while they fill. Each task sums its elements as x * 0, which is 0 for every finite x and NaN
for inf and NaN (see finite.py), and only a band whose sum is NaN is scanned again for the index.
"""

import numpy as np
from numba import prange

from ._jit import helper, kernel

ZERO = np.float32(0.0)
BAND = 64  # output rows per parallel task: 64 source floats = 4 cache lines per source row
TILE = 16  # source rows per step: each output row gets a whole cache line (16 floats) at once


@helper
def _first_in_band(w, j0, j1):
    """Flat index (into w [in, out]) of the first non-finite w[:, j0:j1] in w's order, or -1."""
    for i in range(w.shape[0]):
        for j in range(j0, j1):
            if not np.isfinite(w[i, j]):
                return i * w.shape[1] + j
    return -1


@kernel
def transpose_checked(w, row_length):
    """w [in, out] float32 (C-contiguous, read-only or not), row_length >= in -> (wt, first):
    wt [out, row_length] float32 with wt[j, i] = w[i, j] for i < in and 0 after, and first the
    flat index into w of its first NaN or +-inf in w's own (row-major) order, or -1 if every
    element is finite."""
    n_in, n_out = w.shape
    wt = np.empty((n_out, row_length), dtype=np.float32)
    n_bands = (n_out + BAND - 1) // BAND
    firsts = np.full(n_bands, -1, dtype=np.int64)
    for band in prange(n_bands):
        j0 = band * BAND
        j1 = min(j0 + BAND, n_out)
        for j in range(j0, j1):
            for i in range(n_in, row_length):
                wt[j, i] = ZERO                       # the padding
        poison = ZERO
        for i0 in range(0, n_in, TILE):
            i1 = min(i0 + TILE, n_in)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    value = w[i, j]
                    wt[j, i] = value
                    poison += value * ZERO
        if poison != poison:
            firsts[band] = _first_in_band(w, j0, j1)
    first = -1
    for band in range(n_bands):  # bands are column ranges: the earliest index may be in any
        if firsts[band] >= 0 and (first < 0 or firsts[band] < first):
            first = firsts[band]
    return wt, first
