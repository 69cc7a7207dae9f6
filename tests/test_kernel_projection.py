"""projection (x @ W + b with W packed by pack_checked) and its outer-product tiles against
float64 NumPy.

Tolerance as in test_kernel_linear.py: each output may differ from the exact value by
2e-6 x sum_p |x[i,p] w[p,j]| (about 16 float32 ulps of the sum of magnitudes: the error bound of
a float32 dot product, whatever the summation order), plus the float32 rounding of the bias.
Shapes: GPT-2's projections on 1 to 1024 rows, then rows that leave a partial tile (8 rows on
AVX-512, 2 on AVX2) or more than one block of BLOCK_ROWS, outputs that leave a partial
group of 48 or panel of 96, depths of more than one DEPTH_STEP, and no rows at all.
"""

import numba
import numpy as np
import pytest
from numba import njit

from gpt2numba.kernels import pack_checked, projection
from gpt2numba.kernels.outer_tile import (
    BLOCK_ROWS,
    COLUMNS,
    DEPTH_STEP,
    ROWS,
    outer_tile,
    outer_tile_into,
    tile_of,
)
from support.numba_cache import parameter

SHAPES = [  # (n, in, out)
    (1, 768, 2304), (8, 768, 768), (128, 768, 3072), (1024, 768, 2304), (1024, 3072, 768),
    (3, 1600, 4800), (1, 1, 1), (5, 13, 7), (9, 97, 101), (2, 64, 3), (17, 300, 49),
    (BLOCK_ROWS + 3, 2 * DEPTH_STEP + 5, 97), (0, 16, 48),
]


def packed_weight(w):
    packed, first = pack_checked(parameter(w))
    assert first == -1
    packed.flags.writeable = False   # as the model's parameters
    return packed


def check(out, x, w, b):
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    exact = x64 @ w64 + b64
    bound = 2e-6 * (np.abs(x64) @ np.abs(w64)) + 1e-7 * np.abs(b64)
    assert out.dtype == np.float32 and out.shape == exact.shape
    assert np.all(np.abs(out - exact) <= bound)


@pytest.mark.parametrize("n,d_in,d_out", SHAPES)
def test_matches_float64(n, d_in, d_out):
    rng = np.random.default_rng(n * 7919 + d_in * 31 + d_out)
    x = rng.standard_normal((n, d_in), dtype=np.float32)
    w = rng.standard_normal((d_in, d_out), dtype=np.float32) * np.float32(0.05)
    b = rng.standard_normal(d_out, dtype=np.float32)
    check(projection(x, packed_weight(w), parameter(b)), x, w, b)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [95, 96, 600])
def test_every_split_of_rows_and_panels_matches_float64(threads, n):
    # 600 rows are three pieces of BLOCK_ROWS rows or fewer for each panel, taken by whichever
    # thread is free; 95 and 96 rows one piece per panel.
    rng = np.random.default_rng(n + threads)
    x = rng.standard_normal((n, 768), dtype=np.float32)
    w = rng.standard_normal((768, 2304), dtype=np.float32) * np.float32(0.05)
    b = rng.standard_normal(2304, dtype=np.float32)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        out = projection(x, packed_weight(w), parameter(b))
    finally:
        numba.set_num_threads(before)
    check(out, x, w, b)


def tile_inputs(rng, rows, depth, last, p0, a0):
    """(x, packed, acc) for a tile of `rows` rows at i = 5 over steps p0..p0 + depth: NaN in
    every entry it must not read (rows of x past `last`, columns and steps past the depth)."""
    x = rng.standard_normal((11, p0 + depth + 3), dtype=np.float32)
    x[:, p0 + depth:] = np.nan
    x[last + 1:] = np.nan
    packed = rng.standard_normal((p0 + depth + 2, COLUMNS), dtype=np.float32)
    packed[p0 + depth:] = np.nan
    acc = rng.standard_normal((a0 + rows + 2, COLUMNS), dtype=np.float32)
    return x, packed, acc


@pytest.mark.parametrize("rows,width", [(ROWS, None), (8, 16), (2, 8)],
                         ids=["this machine's", "avx512", "avx2"])
@pytest.mark.parametrize("depth", [0, 1, 15, 16, 17, 128, 768])
def test_a_tile_adds_its_sums_to_acc_and_clamps_its_rows(rows, width, depth):
    # Rows of x from `last` = 9 on are read as row 9; the sums start at p0 = 3 and are added to
    # what acc holds, in its rows a0 .. a0 + rows; its other rows stay as they were. Both
    # machines' tiles run here (AVX2's vectors are legal on AVX-512; AVX-512's are split on AVX2).
    tile = outer_tile if width is None else tile_of(rows, width)
    call = njit(lambda *args: tile(*args))   # an intrinsic is called from compiled code only
    rng = np.random.default_rng(depth + rows)
    i, last, p0, a0 = 5, 9, 3, 1
    x, packed, acc = tile_inputs(rng, rows, depth, last, p0, a0)
    before = acc.copy()

    call(x, i, last, p0, packed, depth, acc, a0)

    chosen = [min(i + r, last) for r in range(rows)]
    x64 = x[chosen, p0:p0 + depth].astype(np.float64)
    w64 = packed[p0:p0 + depth].astype(np.float64)
    sums = before[a0:a0 + rows].astype(np.float64)
    bound = 2e-6 * (np.abs(sums) + np.abs(x64) @ np.abs(w64))
    assert np.all(np.abs(acc[a0:a0 + rows] - (sums + x64 @ w64)) <= bound)
    assert np.array_equal(acc[:a0], before[:a0])
    assert np.array_equal(acc[a0 + rows:], before[a0 + rows:])


@pytest.mark.parametrize("rows,width", [(ROWS, None), (8, 16), (2, 8)],
                         ids=["this machine's", "avx512", "avx2"])
@pytest.mark.parametrize("depth", [0, 1, 17, 128])
@pytest.mark.parametrize("last", [9, 5])
def test_a_finishing_tile_stores_sums_plus_bias_into_out_rows(rows, width, depth, last):
    # The sums of the steps from p0 = 3, added to acc's rows a0.. and to the bias, go to out's
    # rows min(i + r, last), at columns c0 = 50..50 + COLUMNS; acc and every other entry of out
    # stay as they were. Rows past `last` store row `last` again: in outer_panel their sums in
    # acc are row last's too (every step computed them from the same rows of x), as here.
    tile = outer_tile_into if width is None else tile_of(rows, width, into_out=True)
    call = njit(lambda *args: tile(*args))
    rng = np.random.default_rng(depth + rows + last)
    i, p0, a0, c0 = 5, 3, 1, 50
    x, packed, acc = tile_inputs(rng, rows, depth, last, p0, a0)
    for r in range(last - i + 1, rows):
        acc[a0 + r] = acc[a0 + last - i]
    bias = rng.standard_normal(COLUMNS + 5, dtype=np.float32)
    out = rng.standard_normal((12, c0 + COLUMNS + 7), dtype=np.float32)
    acc_before, out_before = acc.copy(), out.copy()

    call(x, i, last, p0, packed, depth, acc, a0, out, c0, bias)

    chosen = [min(i + r, last) for r in range(rows)]
    x64 = x[chosen, p0:p0 + depth].astype(np.float64)
    w64 = packed[p0:p0 + depth].astype(np.float64)
    sums = acc_before[a0:a0 + rows].astype(np.float64)
    b64 = bias[:COLUMNS].astype(np.float64)
    exact = sums + x64 @ w64 + b64
    bound = 2e-6 * (np.abs(sums) + np.abs(x64) @ np.abs(w64)) + 1e-7 * np.abs(b64)
    written = sorted(set(chosen))
    stored = out[chosen, c0:c0 + COLUMNS]
    assert np.all(np.abs(stored - exact) <= bound)
    assert np.array_equal(acc, acc_before)
    untouched = np.ones(out.shape, bool)
    untouched[written, c0:c0 + COLUMNS] = False
    assert np.array_equal(out[untouched], out_before[untouched])


def test_a_tile_of_other_types_is_refused_when_compiled():
    call = njit(lambda x, acc: outer_tile(x, 0, 0, 0, x, 1, acc, 0))
    with pytest.raises(numba.core.errors.TypingError):
        call(np.zeros((2, 48)), np.zeros((8, 48)))   # float64
