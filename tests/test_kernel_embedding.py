"""embedding and residual: float32 additions, so the result equals NumPy's float32 sum exactly."""

import numpy as np
import pytest

from gpt2numba.kernels import embedding, residual


@pytest.mark.parametrize("n", [1, 7, 1024])
def test_embedding_is_token_plus_position(n):
    rng = np.random.default_rng(n)
    wte = rng.standard_normal((50257, 64), dtype=np.float32)
    wpe = rng.standard_normal((1024, 64), dtype=np.float32)
    ids = rng.integers(0, 50257, size=n)
    ids[0] = 50256
    out = embedding(wte, wpe, ids, np.arange(n))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, wte[ids] + wpe[:n])


def test_packed_texts_each_start_at_position_0():
    rng = np.random.default_rng(3)
    wte = rng.standard_normal((100, 16), dtype=np.float32)
    wpe = rng.standard_normal((1024, 16), dtype=np.float32)
    ids = rng.integers(0, 100, size=10)
    positions = np.array([0, 1, 2, 0, 0, 1, 2, 3, 4, 0])
    out = embedding(wte, wpe, ids, positions)
    np.testing.assert_array_equal(out, wte[ids] + wpe[positions])


@pytest.mark.parametrize("n,d", [(1, 768), (7, 1600), (1024, 768), (3, 5)])
def test_residual_is_the_sum(n, d):
    rng = np.random.default_rng(n + d)
    x = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.standard_normal((n, d), dtype=np.float32)
    out = residual(x, y)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x + y)
