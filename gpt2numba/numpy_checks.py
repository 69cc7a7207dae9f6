"""The load's two kernels, first_nonfinite and transpose_checked, in plain NumPy: what the
load uses while the kernels are not in Numba's cache (a machine's first run, or no writable
cache).

On a first run the load starts long before any kernel is compiled, and these two kernels would
put their compile in front of the first token to save a small part of the load
(`python benchmarks/compile_time.py` and `python benchmarks/finite_scan.py` measure both).
The same results, as the tests check; compiling.py compiles the kernels after the forward's,
for the next runs.
"""

import numpy as np

CHUNK = 1 << 20  # elements per isfinite pass: bounds its boolean temporary to 1 MiB


def first_nonfinite(x):
    """Flat index of the first NaN or infinity in x [n] float32, or -1 if there is none."""
    for start in range(0, x.shape[0], CHUNK):
        bad = np.flatnonzero(~np.isfinite(x[start:start + CHUNK]))
        if bad.size:
            return start + int(bad[0])
    return -1


def transpose_checked(w, row_length):
    """w [in, out] float32, row_length >= in -> (wt, first): wt [out, row_length] float32 with
    w.T in its first `in` columns and zeros after, and first the row-major flat index in w of
    its first NaN or infinity, or -1."""
    wt = np.zeros((w.shape[1], row_length), np.float32)
    wt[:, :w.shape[0]] = w.T
    return wt, first_nonfinite(w.reshape(-1))
