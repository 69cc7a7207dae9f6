"""pack_checked against NumPy: the packed copy exactly (a copy changes no bit; zeros past the
last column), and the flat index of the first NaN or inf in the source's own order, else -1.
Shapes whose columns are not a multiple of the groups' 48, n = 1 and GPT-2's own projection
shapes. The kernel and its NumPy version (numpy_checks, what a first run's load uses) alike."""

import numpy as np
import pytest

from gpt2numba import kernels, numpy_checks

SHAPES = [(1, 1), (1, 7), (7, 1), (3, 5), (17, 65), (100, 129), (768, 2304), (3072, 768),
          (1024, 1)]
BAD_VALUES = [np.nan, np.inf, -np.inf]


def numpy_first_nonfinite(w):
    bad = np.flatnonzero(~np.isfinite(w.astype(np.float64)))
    return int(bad[0]) if bad.size else -1


@pytest.fixture(params=[kernels, numpy_checks], ids=["kernel", "numpy"])
def pack_checked(request):
    """(packed, first) of the version under test."""
    return request.param.pack_checked


def packed_by_numpy(w):
    """packed[g, p, c] = w[p, 48 g + c], zeros past w's columns, written out plainly."""
    n_in, n_out = w.shape
    groups = -(-n_out // 48)
    packed = np.zeros((groups, n_in, 48), np.float32)
    for j in range(n_out):
        packed[j // 48, :, j % 48] = w[:, j]
    return packed


def weight(shape, seed=0, read_only=True):
    w = (np.random.default_rng(seed).standard_normal(shape) * 10).astype(np.float32)
    w.flags.writeable = not read_only
    return w


@pytest.mark.parametrize("shape", SHAPES)
def test_the_copy_is_packed_and_finite_is_minus_one(shape, pack_checked):
    w = weight(shape)
    packed, first = pack_checked(w)
    assert packed.shape == (-(-shape[1] // 48), shape[0], 48) and packed.flags.c_contiguous
    np.testing.assert_array_equal(packed, packed_by_numpy(w))  # exact: a copy, and zeros
    assert first == numpy_first_nonfinite(w) == -1


@pytest.mark.parametrize("shape", SHAPES)
def test_the_copy_starts_at_a_cache_line(shape, pack_checked):
    # projection's tiles load the packed weights 16 floats at a time, at multiples of 16 floats
    # from the start: from anywhere else in a line, each load would straddle two
    packed, _ = pack_checked(weight(shape))
    assert packed.ctypes.data % 64 == 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("value", BAD_VALUES)
def test_one_bad_value_is_found_wherever_it_is(shape, value, pack_checked):
    rng = np.random.default_rng(sum(shape))
    for index in {(0, 0), (shape[0] - 1, shape[1] - 1),
                  (int(rng.integers(shape[0])), int(rng.integers(shape[1])))}:
        w = weight(shape, read_only=False)
        w[index] = value
        packed, first = pack_checked(w)
        assert first == numpy_first_nonfinite(w) == index[0] * shape[1] + index[1]
        np.testing.assert_array_equal(packed, packed_by_numpy(w))  # NaN equals NaN here


def test_the_first_in_row_order_wins_over_an_earlier_column(pack_checked):
    # Groups are column ranges: a bad value in a later group but an earlier row comes first.
    w = weight((50, 300), read_only=False)
    w[40, 3] = np.inf    # group 0, row 40
    w[2, 250] = np.nan   # group 5, row 2: first in row-major order
    w[2, 251] = -np.inf
    assert pack_checked(w)[1] == numpy_first_nonfinite(w) == 2 * 300 + 250


def test_negative_zero_subnormals_and_extremes_are_finite(pack_checked):
    tiny = np.finfo(np.float32).smallest_subnormal
    big = np.finfo(np.float32).max
    values = np.array([-0.0, 0.0, tiny, -tiny, big, -big, np.finfo(np.float32).tiny], np.float32)
    w = np.resize(values, (129, 70))
    packed, first = pack_checked(w)
    assert first == -1
    np.testing.assert_array_equal(packed.view(np.uint32),
                                  packed_by_numpy(w).view(np.uint32))  # -0.0 kept
