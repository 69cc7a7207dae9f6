"""pack_checked: a Conv1D weight w [in, out] -> its columns packed in groups of COLUMNS, the
layout `projection` reads, and where w's first NaN or infinity is.

The checkpoints store every projection as Conv1D, [in, out]: y = x @ w. `projection` computes
it as sums of outer products (outer_tile.py), step p adding x[:, p] times a run of w[p]'s
columns, so it wants each run of COLUMNS columns contiguous over all of in:

    packed[g, p, c] = w[p, g * COLUMNS + c]    (zeros past out)

The model packs each projection once at load, and since that pass reads every weight anyway,
it also checks that they are finite (a NaN weight would turn every logit into NaN): the check
costs no extra read of the file.

Schedule: one parallel task per group. A group reads COLUMNS contiguous floats of each of w's
rows and writes them contiguously. Each task sums its elements as x * 0, which is 0 for every
finite x and NaN for inf and NaN (see finite.py), and only a group whose sum is NaN is scanned
again for the index.
"""

import numpy as np
from numba import prange

from ._jit import helper, kernel
from .outer_tile import COLUMNS, line_aligned_empty

ZERO = np.float32(0.0)


@helper
def _first_in_columns(w, j0, j1):
    """Flat index (into w [in, out]) of the first non-finite w[:, j0:j1] in w's order, or -1."""
    for i in range(w.shape[0]):
        for j in range(j0, j1):
            if not np.isfinite(w[i, j]):
                return i * w.shape[1] + j
    return -1


@kernel
def pack_checked(w):
    """w [in, out] float32 (C-contiguous, read-only or not) -> (packed, first): packed
    [ceil(out / COLUMNS), in, COLUMNS] float32, starting at a cache line (line_aligned_empty),
    with packed[g, p, c] = w[p, g * COLUMNS + c], 0 past out, and first the flat index into w
    of its first NaN or +-inf in w's own (row-major) order, or -1 if every element is
    finite."""
    n_in, n_out = w.shape
    groups = (n_out + COLUMNS - 1) // COLUMNS
    packed = line_aligned_empty((groups, n_in, COLUMNS))
    firsts = np.full(groups, -1, dtype=np.int64)
    for g in prange(groups):
        j0 = g * COLUMNS
        width = min(COLUMNS, n_out - j0)
        poison = ZERO
        for p in range(n_in):
            for c in range(width):
                value = w[p, j0 + c]
                packed[g, p, c] = value
                poison += value * ZERO
            for c in range(width, COLUMNS):
                packed[g, p, c] = ZERO
        if poison != poison:
            firsts[g] = _first_in_columns(w, j0, j0 + width)
    first = -1
    for g in range(groups):  # groups are column ranges: the earliest index may be in any
        if firsts[g] >= 0 and (first < 0 or firsts[g] < first):
            first = firsts[g]
    return packed, first
