"""The matrix product the model is made of, in "dot" form: out[i, j] = sum_p a[i, p] * b[j, p].

Both operands are read along rows (b is the transposed right-hand side), so every output is a
dot product of two contiguous vectors, which LLVM vectorises as a reduction. The fast path
computes a tile of outputs at once, its running sums kept in vector registers, each step
loading one vector of each row of a and of b; the tiles are chosen for the registers the
machine has, when this module is imported, from the CPU features Numba compiles for:
- AVX2 (16 registers of 8 floats): 4 x 3, 12 sums and 4 rows of a in registers (b is read
  from memory by the multiply-add itself), 12 multiply-adds per 7 loads, on every block;
- AVX-512 (32 registers of 16 floats): 4 x 6, 24 sums and 24 multiply-adds per 10 loads
  (6 columns divide linear's panels of 96).
From `linear.PACKED_MIN_ROWS` rows on, `linear` computes sums of outer products instead
(outer_tile.py), as `projection` always does: no horizontal sums at the end of a tile.
A plain dot product per output loads 2 values per multiply-add, so memory traffic, not
arithmetic, bounds it (`benchmarks/bench_kernels.py` compares the two).

These are serial building blocks: the parallel kernels (`linear`, `causal_self_attention`)
split the work and call them from inside their `prange` loops.
"""

import numpy as np
from numba.core import config
from numba.core.codegen import get_host_cpu_features

from ._jit import helper

ZERO = np.float32(0.0)
# What Numba compiles for: NUMBA_CPU_FEATURES when set, else this CPU's features.
AVX512 = "+avx512f" in (config.CPU_FEATURES if config.CPU_FEATURES is not None
                        else get_host_cpu_features())


@helper
def dot(a, i, b, j, depth):
    """sum_p a[i, p] * b[j, p] for p < depth. a [n, >=depth], b [m, >=depth], float32."""
    ai = a[i]
    bj = b[j]
    acc = ZERO
    for p in range(depth):
        acc += ai[p] * bj[p]
    return acc


@helper
def tile_4x3(a, i, b, j, depth, out):
    """out[i:i+4, j:j+3] = a[i:i+4, :depth] @ b[j:j+3, :depth].T, twelve sums in registers."""
    a0, a1, a2, a3 = a[i], a[i + 1], a[i + 2], a[i + 3]
    b0, b1, b2 = b[j], b[j + 1], b[j + 2]
    c00 = c01 = c02 = c10 = c11 = c12 = c20 = c21 = c22 = c30 = c31 = c32 = ZERO
    for p in range(depth):
        x0, x1, x2, x3 = a0[p], a1[p], a2[p], a3[p]
        y0, y1, y2 = b0[p], b1[p], b2[p]
        c00 += x0 * y0
        c01 += x0 * y1
        c02 += x0 * y2
        c10 += x1 * y0
        c11 += x1 * y1
        c12 += x1 * y2
        c20 += x2 * y0
        c21 += x2 * y1
        c22 += x2 * y2
        c30 += x3 * y0
        c31 += x3 * y1
        c32 += x3 * y2
    out[i, j], out[i, j + 1], out[i, j + 2] = c00, c01, c02
    out[i + 1, j], out[i + 1, j + 1], out[i + 1, j + 2] = c10, c11, c12
    out[i + 2, j], out[i + 2, j + 1], out[i + 2, j + 2] = c20, c21, c22
    out[i + 3, j], out[i + 3, j + 1], out[i + 3, j + 2] = c30, c31, c32


@helper
def tile_4x6(a, i, b, j, depth, out):
    """out[i:i+4, j:j+6] = a[i:i+4, :depth] @ b[j:j+6, :depth].T, 24 sums in registers."""
    a0, a1, a2, a3 = a[i], a[i + 1], a[i + 2], a[i + 3]
    b0, b1, b2, b3, b4, b5 = b[j], b[j + 1], b[j + 2], b[j + 3], b[j + 4], b[j + 5]
    c00 = c01 = c02 = c03 = c04 = c05 = c10 = c11 = c12 = c13 = c14 = c15 = ZERO
    c20 = c21 = c22 = c23 = c24 = c25 = c30 = c31 = c32 = c33 = c34 = c35 = ZERO
    for p in range(depth):
        x0, x1, x2, x3 = a0[p], a1[p], a2[p], a3[p]
        y0, y1, y2, y3, y4, y5 = b0[p], b1[p], b2[p], b3[p], b4[p], b5[p]
        c00 += x0 * y0
        c01 += x0 * y1
        c02 += x0 * y2
        c03 += x0 * y3
        c04 += x0 * y4
        c05 += x0 * y5
        c10 += x1 * y0
        c11 += x1 * y1
        c12 += x1 * y2
        c13 += x1 * y3
        c14 += x1 * y4
        c15 += x1 * y5
        c20 += x2 * y0
        c21 += x2 * y1
        c22 += x2 * y2
        c23 += x2 * y3
        c24 += x2 * y4
        c25 += x2 * y5
        c30 += x3 * y0
        c31 += x3 * y1
        c32 += x3 * y2
        c33 += x3 * y3
        c34 += x3 * y4
        c35 += x3 * y5
    out[i, j], out[i, j + 1], out[i, j + 2] = c00, c01, c02
    out[i, j + 3], out[i, j + 4], out[i, j + 5] = c03, c04, c05
    out[i + 1, j], out[i + 1, j + 1], out[i + 1, j + 2] = c10, c11, c12
    out[i + 1, j + 3], out[i + 1, j + 4], out[i + 1, j + 5] = c13, c14, c15
    out[i + 2, j], out[i + 2, j + 1], out[i + 2, j + 2] = c20, c21, c22
    out[i + 2, j + 3], out[i + 2, j + 4], out[i + 2, j + 5] = c23, c24, c25
    out[i + 3, j], out[i + 3, j + 1], out[i + 3, j + 2] = c30, c31, c32
    out[i + 3, j + 3], out[i + 3, j + 4], out[i + 3, j + 5] = c33, c34, c35


# The machine's tile (see the module docstring) and its columns.
SMALL_TILE, SMALL_TILE_COLS = (tile_4x6, 6) if AVX512 else (tile_4x3, 3)


@helper
def matmul_block(a, b, out, i0, i1, j0, j1, depth):
    """out[i0:i1, j0:j1] = a[i0:i1, :depth] @ b[j0:j1, :depth].T: the machine's small tiles
    (4 x 6 or 4 x 3), then the edges.

    a [n, k], b [m, k], out [n, m], float32, rows C-contiguous; depth <= k.
    """
    i4 = i0 + (i1 - i0) // 4 * 4
    j_tiles = j0 + (j1 - j0) // SMALL_TILE_COLS * SMALL_TILE_COLS
    for i in range(i0, i4, 4):
        for j in range(j0, j_tiles, SMALL_TILE_COLS):
            SMALL_TILE(a, i, b, j, depth, out)
        for j in range(j_tiles, j1):
            for r in range(4):
                out[i + r, j] = dot(a, i + r, b, j, depth)
    for i in range(i4, i1):
        for j in range(j0, j1):
            out[i, j] = dot(a, i, b, j, depth)
