"""softmax against exp(x - max) / sum in float64, and exp32 against np.exp.

Tolerance: 2e-6 relative to each probability plus 1e-9 absolute (float32 exp within 2 ulp,
a float32 sum of up to 50257 terms).
"""

import numpy as np
import pytest

from gpt2numba.kernels import softmax
from gpt2numba.kernels._jit import helper
from gpt2numba.kernels.exp import exp32
from gpt2numba.kernels.softmax import row_max
from support import reference


def check(x):
    out = softmax(x)
    exact = reference.softmax(x.astype(np.float64))
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, exact, rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize("n,m", [(1, 50257), (7, 1024), (128, 128), (1, 1), (3, 17), (1024, 64)])
def test_matches_float64(n, m):
    rng = np.random.default_rng(n * m)
    check((rng.standard_normal((n, m)) * 4).astype(np.float32))


def test_large_magnitudes_do_not_overflow():
    x = np.array([[1e4, 1e4 - 1, 1e4 - 3, -1e4], [-1e4, -1e4 + 2, -1e4 + 0.5, -1e4]], np.float32)
    check(x)


def test_all_equal_row_is_uniform():
    out = softmax(np.full((2, 1000), 3.5, dtype=np.float32))
    np.testing.assert_allclose(out, 1e-3, rtol=1e-6)


def test_minus_inf_gets_probability_zero():
    x = np.array([[0.0, -np.inf, 1.0, -np.inf]], dtype=np.float32)
    out = softmax(x)
    assert out[0, 1] == 0 and out[0, 3] == 0
    check(x)


@helper
def _exp_all(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = exp32(x[i])
    return out


def test_exp32_within_two_ulp():
    x = np.concatenate([np.linspace(-86.5, 88.72, 2_000_001, dtype=np.float32),
                        np.array([0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5], np.float32)])
    exact = np.exp(x.astype(np.float64))
    np.testing.assert_allclose(_exp_all(x), exact, rtol=2 * 2.0**-23, atol=0)


def test_exp32_limits():
    out = _exp_all(np.array([-np.inf, -1000.0, -87.0, 89.0, np.inf, np.nan], np.float32))
    assert out[0] == 0 and out[1] == 0 and out[2] == 0
    assert np.isposinf(out[3]) and np.isposinf(out[4]) and np.isnan(out[5])


@pytest.mark.parametrize("length", [1, 2, 15, 16, 17, 31, 33, 63, 64, 65, 96, 97, 1000, 50257])
def test_row_max_is_the_maximum(length):
    rng = np.random.default_rng(length)
    row = rng.standard_normal(length + 3).astype(np.float32)
    row[rng.integers(0, length)] = 7.5                  # the maximum anywhere in the row
    row[length:] = 100                                  # past length: never read
    assert row_max(row, length) == np.max(row[:length])


def test_row_max_of_minus_inf_and_nan():
    assert row_max(np.array([-np.inf, -np.inf], np.float32), 2) == -np.inf
    assert row_max(np.array([np.nan, 1.0, 3.0], np.float32), 3) == 3.0   # maxnum: NaN skipped
    assert np.isnan(row_max(np.full(4, np.nan, np.float32), 4))


@pytest.mark.parametrize("length", [16, 48, 80, 96, 103])
def test_row_max_finds_the_maximum_in_every_place(length):
    """Every place of a vector, of each of row_max's running maxima, and of the rest after the
    whole vectors (LANES = 16 floats, four running maxima)."""
    row = np.linspace(-1, 0, length, dtype=np.float32)
    for place in range(length):
        peak = row.copy()
        peak[place] = 2.0
        assert row_max(peak, length) == 2.0, place


@pytest.mark.parametrize("length", [16, 64, 96, 97])
def test_row_max_of_vectors_of_minus_inf_and_nan(length):
    assert row_max(np.full(length, -np.inf, np.float32), length) == -np.inf
    assert np.isnan(row_max(np.full(length, np.nan, np.float32), length))
    for place in (0, length // 2, length - 1):
        row = np.full(length, np.nan, np.float32)
        row[place] = -3.0
        assert row_max(row, length) == -3.0, place    # maxnum: NaN skipped in every lane


def test_a_nan_in_a_row_makes_the_row_nan():
    for place in (0, 5, 16, 999):
        x = np.zeros((2, 1000), np.float32)
        x[0, place] = np.nan
        out = softmax(x)
        assert np.isnan(out[0]).all()
        np.testing.assert_allclose(out[1], 1e-3, rtol=1e-6)
