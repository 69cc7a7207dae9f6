"""layernorm against the float64 definition (biased variance, eps inside the square root).

Tolerance: 2e-6 relative to max(|y|, |g| + |b|) elementwise: float32 rounding of the mean,
the variance and the scaling, a few ulps each.
"""

import numpy as np
import pytest

from gpt2numba.kernels import layernorm
from support import reference


def check(x, g, b, eps=1e-5):
    out = layernorm(x, g, b, eps)
    exact = reference.layernorm(x.astype(np.float64), g.astype(np.float64),
                                b.astype(np.float64), eps)
    assert out.dtype == np.float32 and out.shape == x.shape
    scale = np.maximum(np.abs(exact), np.abs(g) + np.abs(b))
    assert np.all(np.abs(out - exact) <= 2e-6 * scale)


@pytest.mark.parametrize("n,d", [(1, 768), (7, 768), (128, 1600), (1024, 768), (3, 64), (5, 1),
                                 (2, 1023)])
def test_matches_float64(n, d):
    rng = np.random.default_rng(n * 31 + d)
    x = rng.standard_normal((n, d), dtype=np.float32) * np.float32(3)
    g = rng.standard_normal(d, dtype=np.float32)
    b = rng.standard_normal(d, dtype=np.float32)
    check(x, g, b)


def test_large_offset_small_spread():
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((9, 768))).astype(np.float32)
    check(x, np.ones(768, np.float32), np.zeros(768, np.float32))


def test_all_equal_row_gives_the_bias():
    x = np.full((2, 768), 7.25, dtype=np.float32)
    b = np.random.default_rng(4).standard_normal(768).astype(np.float32)
    out = layernorm(x, np.ones(768, np.float32), b, 1e-5)
    np.testing.assert_array_equal(out, np.broadcast_to(b, x.shape))


def test_eps_is_used():
    x = np.array([[0.0, 1e-3]], dtype=np.float32)      # variance 2.5e-7, far below eps = 1e-5
    check(x, np.ones(2, np.float32), np.zeros(2, np.float32), eps=1e-5)
