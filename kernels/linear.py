"""linear: y = x @ W + b, the projection of every GPT-2 layer (c_attn, c_proj, c_fc) and the head.

Weight layout: W is stored transposed, as w[out, in] (the checkpoints' Conv1D layout is
[in, out]; the model transposes once at load), so that y[i, j] = x[i] . w[j] is a dot product
of two contiguous rows. The tied head uses the token embedding wte [vocab, n_embd] as it is.
A row of w may be longer than `in` (BLAS's "leading dimension"): only its first `in` floats
are read. The model pads the rows whose length is a multiple of 4 KiB (`stored_row_length`):
the L1 cache (32 KiB, 8 ways) maps addresses 4 KiB apart to the same set, so a tile's weight
rows, 12 KiB apart at in = 3072, would evict one another. One cache line of padding puts them
in different sets. It matters most while the weights are in cache; a whole forward reads them
from DRAM.

The bias is optional, as llm.c's `bias != NULL`: pass NO_BIAS, an empty array, for none (the
head has none). Not None: Numba compiles one version of a kernel per argument type, and a None
beside the projections' arrays would compile all of `linear` a second time on the first run;
NO_BIAS is read-only like the model's parameters, so it is the very type of their biases.

Two versions side by side:
- `linear_reference`: one dot product per output. The algorithm, plainly.
- `linear`: the same sums, scheduled for the caches and registers. The outputs are cut into
  panels of PANEL columns; a panel's weights (PANEL x in x 4 bytes: 288 KiB at in = 768)
  stay in L2 while every row of x passes over them, and each panel is computed in register
  tiles chosen for the machine (see matmul.py: 4 x 3 on AVX2; on AVX-512 6 x 4, and 4 x 6
  under 96 rows). Panels are independent, so they are the parallel loop.
  `python benchmarks/bench_kernels.py` measures both beside OpenBLAS.
"""

import numpy as np
from numba import prange
from numba.extending import register_jitable

from ._jit import kernel
from .matmul import dot, matmul_wide

PANEL = 96
PAD = 16  # floats: one cache line
NO_BIAS = np.empty(0, dtype=np.float32)
NO_BIAS.flags.writeable = False


@register_jitable  # a Python function, and callable from kernels (attention pads its rows too)
def stored_row_length(n_in):
    """The row length, in floats, of a weight with n_in inputs as the model stores it: n_in,
    and PAD more when n_in floats are a multiple of 4 KiB (see the module docstring)."""
    return n_in + PAD if n_in * 4 % 4096 == 0 else n_in


@kernel
def linear_reference(x, w, b):
    """x [n, in] @ w[out, :in].T + b [out] or NO_BIAS -> [n, out], float32; a dot per output.
    w is [out, >= in]."""
    n, m = x.shape[0], w.shape[0]
    out = np.empty((n, m), dtype=np.float32)
    for i in prange(n):
        for j in range(m):
            out[i, j] = dot(x, i, w, j, x.shape[1])
            if b.shape[0]:
                out[i, j] += b[j]
    return out


@kernel
def linear(x, w, b):
    """x [n, in] @ w[out, :in].T + b [out] or NO_BIAS -> [n, out], float32; panels in parallel.
    w is [out, >= in]."""
    n, m = x.shape[0], w.shape[0]
    out = np.empty((n, m), dtype=np.float32)
    for panel in prange((m + PANEL - 1) // PANEL):
        j0 = panel * PANEL
        j1 = min(j0 + PANEL, m)
        matmul_wide(x, w, out, 0, n, j0, j1, x.shape[1])
        if b.shape[0]:
            for i in range(n):
                for j in range(j0, j1):
                    out[i, j] += b[j]
    return out
