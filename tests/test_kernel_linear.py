"""linear and linear_reference against reference.linear (x @ W + b) in float64.

Tolerance: each output may differ from the exact value by 2e-6 x sum_p |x[i,p] w[p,j]| (about
16 float32 ulps of the sum of magnitudes: the error bound of a float32 dot product, whatever
the summation order), plus the float32 rounding of the bias.
"""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from gpt2numba.kernels import linear, linear_reference
from gpt2numba.kernels.linear import (
    BUSY_ENOUGH,
    MIN_BLOCK_ROWS,
    NO_BIAS,
    PACKED_BLOCK_ALIGN,
    PACKED_MIN_ROWS,
    PANEL,
    busy_share,
    split,
)
from support import reference
from support.numba_cache import parameter

SHAPES = [  # (n, in, out): GPT-2's projections and head, then awkward sizes
    (1, 768, 2304), (7, 768, 768), (128, 768, 3072), (1024, 768, 2304), (1024, 3072, 768),
    (1, 768, 50257), (3, 1600, 4800), (1, 1, 1), (5, 13, 7), (4, 3, 1), (9, 97, 101), (2, 64, 3),
]


def check(out, x, w_in_out, b=None, outs=()):
    """Check `out` and every array of `outs` against x @ w_in_out + b in float64."""
    x64, w64 = x.astype(np.float64), w_in_out.astype(np.float64)
    b64 = np.zeros(w64.shape[1]) if b is None else b.astype(np.float64)
    exact = reference.linear(x64, w64, b64)
    bound = 2e-6 * (np.abs(x64) @ np.abs(w64)) + 1e-7 * np.abs(b64)
    for each in (out, *outs):
        assert each.dtype == np.float32 and each.shape == exact.shape
        assert np.all(np.abs(each - exact) <= bound)


@pytest.mark.parametrize("n,d_in,d_out", SHAPES)
@pytest.mark.parametrize("kernel", [linear, linear_reference], ids=["fast", "reference"])
def test_matches_float64(kernel, n, d_in, d_out):
    rng = np.random.default_rng(n * 7919 + d_in * 31 + d_out)
    x = rng.standard_normal((n, d_in), dtype=np.float32)
    w = rng.standard_normal((d_in, d_out), dtype=np.float32) * np.float32(0.05)
    b = rng.standard_normal(d_out, dtype=np.float32)
    check(kernel(x, parameter(np.ascontiguousarray(w.T)), parameter(b)), x, w, b)


@pytest.mark.parametrize("n,d_in,d_out", [(1, 768, 50257), (7, 64, 1000), (5, 13, 7), (1, 1, 1)])
@pytest.mark.parametrize("kernel", [linear, linear_reference], ids=["fast", "reference"])
def test_no_bias(kernel, n, d_in, d_out):
    rng = np.random.default_rng(n * 7919 + d_in * 31 + d_out)
    x = rng.standard_normal((n, d_in), dtype=np.float32)
    w = rng.standard_normal((d_in, d_out), dtype=np.float32) * np.float32(0.05)
    check(kernel(x, parameter(np.ascontiguousarray(w.T)), NO_BIAS), x, w)


@pytest.mark.parametrize("n,d_in,d_out", [(1, 3072, 768), (48, 3072, 768), (130, 1024, 50),
                                          (5, 13, 7)])
@pytest.mark.parametrize("kernel", [linear, linear_reference], ids=["fast", "reference"])
def test_weight_rows_longer_than_in_are_read_up_to_in(kernel, n, d_in, d_out):
    # Rows padded by a cache line (BLAS's leading dimension); NaN in the padding would spread
    # into every output that read it.
    rng = np.random.default_rng(n + d_in + d_out)
    x = rng.standard_normal((n, d_in), dtype=np.float32)
    w = rng.standard_normal((d_in, d_out), dtype=np.float32) * np.float32(0.05)
    b = rng.standard_normal(d_out, dtype=np.float32)
    padded = np.full((d_out, d_in + 16), np.nan, dtype=np.float32)
    padded[:, :d_in] = w.T
    check(kernel(x, parameter(padded), parameter(b)), x, w, b)


def test_large_magnitudes_and_cancellation():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((17, 768)) * 1e4).astype(np.float32)
    w = rng.standard_normal((768, 301)).astype(np.float32)
    w[:, 0] = 1.0                     # an output that is a plain sum of large values of both signs
    b = np.full(301, 1e3, dtype=np.float32)
    check(linear(x, parameter(np.ascontiguousarray(w.T)), parameter(b)), x, w, b)


def test_fast_and_reference_agree_to_rounding():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((130, 768), dtype=np.float32)
    w = rng.standard_normal((2304, 768), dtype=np.float32)
    b = rng.standard_normal(2304, dtype=np.float32)
    w, b = parameter(w), parameter(b)
    fast, ref = linear(x, w, b), linear_reference(x, w, b)
    assert np.max(np.abs(fast - ref)) <= 4e-6 * np.max(np.abs(x) @ np.abs(w.T))


# Shapes whose panels alone keep less than BUSY_ENOUGH of 2 threads busy (1, 3 and 7 panels), so
# that on 2 threads `linear` cuts their rows into blocks: rows not a multiple of the block, outputs
# not a multiple of PANEL, a block of 96 rows or more (the wide tile) beside a shorter one.
SPLIT_SHAPES = [(203, 37, 50), (37, 64, 250), (1000, 40, 670), (130, 1024, 50)]


@pytest.fixture
def two_threads():
    """Numba's thread count set to 2 for the test (the suite starts Numba with 2), then restored."""
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("n,d_in,d_out", SPLIT_SHAPES)
def test_rows_cut_into_blocks_match_float64(two_threads, n, d_in, d_out):
    panels, rows = split(n, d_out, 2)
    assert rows < n and n % rows and d_out % PANEL   # the shape exercises the split
    rng = np.random.default_rng(n * 7919 + d_in * 31 + d_out)
    x = rng.standard_normal((n, d_in), dtype=np.float32)
    w = rng.standard_normal((d_in, d_out), dtype=np.float32) * np.float32(0.05)
    b = rng.standard_normal(d_out, dtype=np.float32)
    check(linear(x, parameter(np.ascontiguousarray(w.T)), parameter(b)), x, w, b)
    check(linear(x, parameter(np.ascontiguousarray(w.T)), NO_BIAS), x, w)


def pieces(n, m, threads):
    panels, rows = split(n, m, threads)
    return panels * -(-n // rows)


@pytest.mark.parametrize("pieces,threads,share", [(8, 2, 1.0), (8, 16, 0.5), (17, 2, 17 / 18),
                                                  (120, 64, 120 / 128), (1, 64, 1 / 64),
                                                  (0, 8, 1.0), (3, 1, 1.0)])
def test_busy_share_is_the_pieces_over_the_busiest_threads_pieces_times_threads(pieces, threads,
                                                                                 share):
    assert busy_share(pieces, threads) == pytest.approx(share)


# GPT-2's projections (c_attn, attn c_proj, c_fc, mlp c_proj) and head, for each n_embd of the
# five sizes (distilgpt2 and gpt2 share 768).
def projections(n_embd):
    return [3 * n_embd, n_embd, 4 * n_embd, n_embd, 50257]


@pytest.mark.parametrize("n_embd", [768, 1024, 1280, 1600])
@pytest.mark.parametrize("threads", [1, 2])
def test_on_one_or_two_threads_the_pieces_are_the_panels_in_order(n_embd, threads):
    for m in projections(n_embd):
        for n in (1, 16, 128, 512, 1024):
            assert split(n, m, threads) == (-(-m // PANEL), n)


@pytest.mark.parametrize("n_embd", [768, 1600])   # gpt2, gpt2-xl
@pytest.mark.parametrize("threads", [8, 16, 32, 64])
def test_from_128_tokens_on_the_pieces_keep_64_threads_busy(n_embd, threads):
    for m in projections(n_embd):
        for n in (128, 512, 1024):
            assert busy_share(pieces(n, m, threads), threads) >= BUSY_ENOUGH, (m, n)


def test_a_block_has_min_rows_or_more_and_whole_tiles():
    for n in (16, 31, 32, 100, 128, 777, 1024):
        for threads in (3, 16, 64):
            _, rows = split(n, 768, threads)
            align = PACKED_BLOCK_ALIGN if rows >= PACKED_MIN_ROWS else 4
            assert rows == n or (rows >= MIN_BLOCK_ROWS and rows % align == 0), (n, threads)


# linear on 8, 16 and 64 threads (Numba started with 64; more threads than cores only
# interleave), where GPT-2's own shapes are cut into blocks of rows: for each case k < argv[2],
# argv[1] holds x-k.npy, w-k.npy (as [out, in]) and b-k.npy; each result is written to
# out-k-<threads>.npy there.
MANY_THREADS = """
import sys
from pathlib import Path
import numba, numpy as np
from gpt2numba.kernels import linear
folder = Path(sys.argv[1])
for k in range(int(sys.argv[2])):
    x, w, b = (np.load(folder / f"{name}-{k}.npy") for name in ("x", "w", "b"))
    for threads in (8, 16, 64):
        numba.set_num_threads(threads)
        np.save(folder / f"out-{k}-{threads}.npy", linear(x, w, b))
"""


def test_on_many_threads_the_blocks_of_rows_match_float64(tmp_path):
    shapes = [(128, 768, 768), (200, 1600, 1600), (1024, 3072, 768), (128, 768, 2304)]
    cases = []
    for k, (n, d_in, d_out) in enumerate(shapes):
        assert all(split(n, d_out, threads)[1] < n for threads in (16, 64))   # the rows are cut
        rng = np.random.default_rng(n + d_in + d_out)
        x = rng.standard_normal((n, d_in), dtype=np.float32)
        w = rng.standard_normal((d_in, d_out), dtype=np.float32) * np.float32(0.05)
        b = rng.standard_normal(d_out, dtype=np.float32)
        for name, array in (("x", x), ("w", np.ascontiguousarray(w.T)), ("b", b)):
            np.save(tmp_path / f"{name}-{k}.npy", array)
        cases.append((x, w, b))
    env = dict(os.environ, NUMBA_NUM_THREADS="64")
    done = subprocess.run([sys.executable, "-c", MANY_THREADS, str(tmp_path), str(len(shapes))],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for k, (x, w, b) in enumerate(cases):
        outs = [np.load(tmp_path / f"out-{k}-{threads}.npy") for threads in (8, 16, 64)]
        check(outs[0], x, w, b, outs[1:])
