"""transpose_checked against NumPy: the transposed copy exactly (a copy changes no bit), and the
flat index of the first NaN or inf in the source's own order, else -1. Shapes that are not
multiples of the kernel's band (64) or tile (16), n = 1 and GPT-2's own projection shapes. The
kernel and its NumPy version (numpy_checks, what a first run's load uses) alike."""

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
def transpose_checked(request):
    """(wt, first) of the version under test, rows as long as w's columns."""
    def transposed_and_first(w):
        return request.param.transpose_checked(w, w.shape[0])
    return transposed_and_first


def weight(shape, seed=0, read_only=True):
    w = (np.random.default_rng(seed).standard_normal(shape) * 10).astype(np.float32)
    w.flags.writeable = not read_only
    return w


@pytest.mark.parametrize("shape", SHAPES)
def test_the_copy_is_the_transpose_and_finite_is_minus_one(shape, transpose_checked):
    w = weight(shape)
    wt, first = transpose_checked(w)
    assert wt.shape == shape[::-1] and wt.flags.c_contiguous
    np.testing.assert_array_equal(wt, w.T)  # exact: a copy
    assert first == numpy_first_nonfinite(w) == -1


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("value", BAD_VALUES)
def test_one_bad_value_is_found_wherever_it_is(shape, value, transpose_checked):
    rng = np.random.default_rng(sum(shape))
    for index in {(0, 0), (shape[0] - 1, shape[1] - 1),
                  (int(rng.integers(shape[0])), int(rng.integers(shape[1])))}:
        w = weight(shape, read_only=False)
        w[index] = value
        wt, first = transpose_checked(w)
        assert first == numpy_first_nonfinite(w) == index[0] * shape[1] + index[1]
        np.testing.assert_array_equal(wt, w.T)  # NaN compares equal to NaN here


@pytest.mark.parametrize("checks", [kernels, numpy_checks], ids=["kernel", "numpy"])
def test_longer_rows_are_padded_with_zeros(checks):
    # the model pads some weights' rows (linear.stored_row_length)
    w = weight((3072, 150))
    wt, first = checks.transpose_checked(w, 3072 + 16)
    assert first == -1 and wt.shape == (150, 3072 + 16) and wt.flags.c_contiguous
    np.testing.assert_array_equal(wt[:, :3072], w.T)
    assert (wt[:, 3072:] == 0).all()


def test_the_first_in_row_order_wins_over_an_earlier_column(transpose_checked):
    # Bands are column ranges: a bad value in a later band but an earlier row comes first.
    w = weight((50, 300), read_only=False)
    w[40, 3] = np.inf    # band 0, row 40
    w[2, 250] = np.nan   # band 3, row 2: first in row-major order
    w[2, 251] = -np.inf
    assert transpose_checked(w)[1] == numpy_first_nonfinite(w) == 2 * 300 + 250


def test_negative_zero_subnormals_and_extremes_are_finite(transpose_checked):
    tiny = np.finfo(np.float32).smallest_subnormal
    big = np.finfo(np.float32).max
    values = np.array([-0.0, 0.0, tiny, -tiny, big, -big, np.finfo(np.float32).tiny], np.float32)
    w = np.resize(values, (129, 70))
    wt, first = transpose_checked(w)
    assert first == -1
    np.testing.assert_array_equal(wt.view(np.uint32), w.T.view(np.uint32))  # -0.0 kept
