"""The matrix product the model is made of, in "dot" form: out[i, j] = sum_p a[i, p] * b[j, p].

Both operands are read along rows (b is the transposed right-hand side), so every output is a
dot product of two contiguous vectors, which LLVM vectorises as a reduction. The fast path
computes a 4 x 3 tile of outputs at once: 12 running sums kept in registers (AVX2 has 16),
each step loading 4 values of a and 3 of b for 12 multiply-adds. A plain dot product per output
loads 2 values per multiply-add, so memory traffic, not arithmetic, bounds it
(`benchmarks/bench_kernels.py` compares the two).

These are serial building blocks: the parallel kernels (`linear`, `causal_self_attention`)
split the work and call them from inside their `prange` loops.
"""

import numpy as np

from ._jit import helper

ZERO = np.float32(0.0)


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
def matmul_block(a, b, out, i0, i1, j0, j1, depth):
    """out[i0:i1, j0:j1] = a[i0:i1, :depth] @ b[j0:j1, :depth].T: 4 x 3 tiles, then the edges.

    a [n, k], b [m, k], out [n, m], float32, rows C-contiguous; depth <= k.
    """
    i4 = i0 + (i1 - i0) // 4 * 4
    j3 = j0 + (j1 - j0) // 3 * 3
    for i in range(i0, i4, 4):
        for j in range(j0, j3, 3):
            tile_4x3(a, i, b, j, depth, out)
        for j in range(j3, j1):
            for r in range(4):
                out[i + r, j] = dot(a, i + r, b, j, depth)
    for i in range(i4, i1):
        for j in range(j0, j1):
            out[i, j] = dot(a, i, b, j, depth)
