"""matmul_block's edge tiles against float64 NumPy: blocks whose rows are not a multiple of 4,
whose columns are not a multiple of 3 (or of 6, AVX-512's), and a depth shorter than the rows;
and each register tile on its own, the one this machine does not use included.

`linear` and `causal_self_attention` reach the edges (the rows after the last 4-row tile, the
columns after the last 3-column tile) only for some sizes, and attention's p @ v sums over a
depth shorter than its rows; here each case is tested directly, on blocks that start inside
the arrays too. Tolerance as in test_kernel_linear.py: 2e-6 x
sum_p |a[i,p] b[j,p]| per output. Outside the block, `out` must be left as it was (NaN here),
and the columns of a and b past `depth` must not be read (NaN there would spread).
"""

import numpy as np
import pytest

from gpt2numba.kernels.matmul import matmul_block, tile_4x3, tile_4x6

BLOCKS = [  # (n, m, k, i0, i1, j0, j1, depth)
    (4, 3, 8, 0, 4, 0, 3, 8),           # one whole tile, no edge
    (1, 1, 1, 0, 1, 0, 1, 1),           # a single output: only edges
    (3, 2, 5, 0, 3, 0, 2, 5),           # fewer rows than a tile, fewer columns than a tile
    (7, 11, 13, 0, 7, 0, 11, 13),       # 4 + 3 rows, 9 + 2 columns
    (9, 10, 64, 0, 9, 0, 10, 17),       # 8 + 1 rows, 9 + 1 columns, depth shorter than the rows
    (13, 20, 30, 2, 11, 5, 19, 29),     # an inner block: 8 + 1 rows, 12 + 2 columns
    (6, 7, 40, 1, 6, 3, 7, 1),          # depth 1
    (5, 5, 9, 1, 4, 2, 5, 0),           # depth 0: every sum is empty
    (96, 8, 33, 0, 96, 0, 8, 33),       # many rows, no row edge
    (103, 11, 21, 0, 103, 0, 11, 21),   # 4 x 25 + 3 rows, columns 9 + 2 or 6 + 5
    (120, 14, 40, 3, 113, 1, 14, 39),   # an inner block of 110 rows (4 x 27 + 2)
    (100, 7, 9, 2, 99, 0, 7, 0),        # 97 rows, depth 0
    (100, 9, 17, 0, 100, 0, 9, 17),     # 4 x 25 rows; columns 9 + 0 or 6 + 3
    (8, 5, 20, 0, 8, 0, 5, 20),         # 3 + 2 columns, or 5 columns of edges only (4 x 6)
]


@pytest.mark.parametrize("n,m,k,i0,i1,j0,j1,depth", BLOCKS)
def test_block_matches_float64(n, m, k, i0, i1, j0, j1, depth):
    rng = np.random.default_rng(n * 1000 + m * 10 + depth)
    a = rng.standard_normal((n, k), dtype=np.float32)
    b = rng.standard_normal((m, k), dtype=np.float32)
    a[:, depth:] = np.nan
    b[:, depth:] = np.nan
    out = np.full((n, m), np.nan, dtype=np.float32)

    matmul_block(a, b, out, i0, i1, j0, j1, depth)

    a64 = a[i0:i1, :depth].astype(np.float64)
    b64 = b[j0:j1, :depth].astype(np.float64)
    exact = a64 @ b64.T
    bound = 2e-6 * (np.abs(a64) @ np.abs(b64).T)
    assert np.all(np.abs(out[i0:i1, j0:j1] - exact) <= bound)
    outside = np.ones((n, m), dtype=bool)
    outside[i0:i1, j0:j1] = False
    assert np.isnan(out[outside]).all()


@pytest.mark.parametrize("tile,rows,cols", [(tile_4x3, 4, 3), (tile_4x6, 4, 6)],
                         ids=["4x3", "4x6"])
@pytest.mark.parametrize("depth", [0, 1, 15, 16, 17, 768, 3072])
def test_every_tile_matches_float64_whichever_the_machine_uses(tile, rows, cols, depth):
    # matmul_block reaches only this machine's tile; each is tested here, at an
    # inner position, with depths around a vector of 16 floats and GPT-2's own.
    rng = np.random.default_rng(depth + rows * 10 + cols)
    a = rng.standard_normal((rows + 3, depth + 5), dtype=np.float32)
    b = rng.standard_normal((cols + 2, depth + 5), dtype=np.float32)
    a[:, depth:] = np.nan
    b[:, depth:] = np.nan
    out = np.full((rows + 3, cols + 2), np.nan, dtype=np.float32)

    tile(a, 2, b, 1, depth, out)

    a64 = a[2:2 + rows, :depth].astype(np.float64)
    b64 = b[1:1 + cols, :depth].astype(np.float64)
    bound = 2e-6 * (np.abs(a64) @ np.abs(b64).T)
    assert np.all(np.abs(out[2:2 + rows, 1:1 + cols] - a64 @ b64.T) <= bound)
    outside = np.ones(out.shape, dtype=bool)
    outside[2:2 + rows, 1:1 + cols] = False
    assert np.isnan(out[outside]).all()
