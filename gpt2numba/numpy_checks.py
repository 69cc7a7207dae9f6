"""The load's two kernels, first_nonfinite and pack_checked, in plain NumPy: what the
load uses while the kernels are not in Numba's cache (a machine's first run, or no writable
cache).

On a first run the load starts long before any kernel is compiled, and these two kernels would
put their compile in front of the first token to save a small part of the load
(`python benchmarks/compile_time.py` and `python benchmarks/finite_scan.py` measure both).
The same results, as the tests check; compiling.py compiles the kernels after the forward's,
for the next runs.
"""

import numpy as np

from gpt2numba.kernels.outer_tile import COLUMNS, LINE_FLOATS

CHUNK = 1 << 20  # elements per isfinite pass: bounds its boolean temporary to 1 MiB


def first_nonfinite(x):
    """Flat index of the first NaN or infinity in x [n] float32, or -1 if there is none."""
    for start in range(0, x.shape[0], CHUNK):
        bad = np.flatnonzero(~np.isfinite(x[start:start + CHUNK]))
        if bad.size:
            return start + int(bad[0])
    return -1


def pack_checked(w):
    """w [in, out] float32 -> (packed, first): packed [ceil(out / COLUMNS), in, COLUMNS] float32
    starting at a cache line, packed[g, p, c] = w[p, g * COLUMNS + c] and zeros past out, and
    first the row-major flat index in w of its first NaN or infinity, or -1."""
    n_in, n_out = w.shape
    groups = -(-n_out // COLUMNS)
    padded = np.zeros((n_in, groups * COLUMNS), np.float32)
    padded[:, :n_out] = w
    packed = line_aligned_empty((groups, n_in, COLUMNS))
    packed[...] = padded.reshape(n_in, groups, COLUMNS).transpose(1, 0, 2)
    return packed, first_nonfinite(w.reshape(-1))


def line_aligned_empty(shape):
    """np.empty(shape, np.float32) starting at a cache line, as the kernel's copy does
    (kernels.outer_tile.line_aligned_empty says why)."""
    size = int(np.prod(shape))
    floats = np.empty(size + LINE_FLOATS, np.float32)
    skip = (-floats.ctypes.data) % (LINE_FLOATS * 4) // 4
    return floats[skip:skip + size].reshape(shape)
