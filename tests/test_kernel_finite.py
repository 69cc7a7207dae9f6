"""first_nonfinite against NumPy: the flat index of the first NaN or inf, else -1. Exact (an
index), on sizes that are not multiples of the kernel's chunk, read-only arrays included. The
kernel and its NumPy version (numpy_checks, what a first run's load uses) alike."""

import numpy as np
import pytest

from gpt2numba import kernels, numpy_checks


def numpy_first_nonfinite(x):
    bad = np.flatnonzero(~np.isfinite(x.astype(np.float64)))
    return int(bad[0]) if bad.size else -1


SIZES = [1, 2, 1024, 65535, 65536, 65537, 1_000_003, 2_100_001]  # chunks: 2^16, NumPy's 2^20
BAD_VALUES = [np.nan, np.inf, -np.inf, -np.nan]


@pytest.fixture(params=[kernels, numpy_checks], ids=["kernel", "numpy"])
def first_nonfinite(request):
    return request.param.first_nonfinite


def array(n, seed=0):
    return (np.random.default_rng(seed).standard_normal(n) * 100).astype(np.float32)


@pytest.mark.parametrize("n", SIZES)
def test_all_finite_is_minus_one(n, first_nonfinite):
    x = array(n, n)
    assert first_nonfinite(x) == numpy_first_nonfinite(x) == -1


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_bad_value_is_found(n, value, where, first_nonfinite):
    x = array(n, n)
    index = {"first": 0, "middle": n // 2, "last": n - 1}[where]
    x[index] = value
    assert first_nonfinite(x) == numpy_first_nonfinite(x) == index


@pytest.mark.parametrize("n", [3, 65537, 1_000_003, 2_100_001])
def test_the_first_of_several_is_found(n, first_nonfinite):
    x = array(n, 1)
    rng = np.random.default_rng(n)
    positions = rng.choice(n, size=3, replace=False)
    x[positions] = [np.inf, np.nan, -np.inf]
    assert first_nonfinite(x) == numpy_first_nonfinite(x) == positions.min()


def test_negative_zero_subnormals_and_extremes_are_finite(first_nonfinite):
    tiny = np.finfo(np.float32).smallest_subnormal
    big = np.finfo(np.float32).max
    x = np.array([-0.0, 0.0, tiny, -tiny, tiny * 3, big, -big, np.finfo(np.float32).tiny],
                 np.float32)
    x = np.tile(x, 200_001)  # three chunks and a part
    assert first_nonfinite(x) == numpy_first_nonfinite(x) == -1
    x[-1] = np.inf
    assert first_nonfinite(x) == numpy_first_nonfinite(x) == x.size - 1


def test_a_read_only_view_of_a_2d_weight(first_nonfinite):
    w = array(50 * 777, 3).reshape(50, 777)
    w[31, 500] = np.nan
    w.flags.writeable = False
    flat = w.reshape(-1)
    assert first_nonfinite(flat) == numpy_first_nonfinite(flat) == 31 * 777 + 500


def test_empty_array_is_minus_one(first_nonfinite):
    assert first_nonfinite(np.zeros(0, np.float32)) == -1
