"""causal_self_attention against the float64 definition (split heads, q k^T / sqrt(hd),
-inf above the diagonal, softmax, weighted sum of v, heads merged).

Tolerance: 4e-6 x max |v| absolute (each output is a convex combination of v's rows; the
weights are float32 softmax values, each within a few ulps).
"""

import numpy as np
import pytest

from gpt2numba.kernels import causal_self_attention
from support import reference


def check(qkv, n_head, first=0):
    out = causal_self_attention(qkv, n_head, first)
    exact = reference.causal_self_attention(qkv.astype(np.float64), n_head)[first:]
    d = qkv.shape[1] // 3
    assert out.dtype == np.float32 and out.shape == (qkv.shape[0] - first, d)
    assert np.max(np.abs(out - exact)) <= 4e-6 * np.max(np.abs(qkv[:, 2 * d:]))


@pytest.mark.parametrize("n,d,n_head", [
    (1, 768, 12), (7, 768, 12), (128, 768, 12), (1024, 768, 12), (5, 1600, 25), (13, 1280, 20),
    (1, 64, 1), (6, 64, 4), (33, 1024, 16),
    (300, 192, 3),   # a partial last block of query rows, keys in blocks of 256 then 44
    (9, 36, 3),      # head_dim 12: q k^T's depth is not a multiple of 8
])
def test_matches_float64(n, d, n_head):
    rng = np.random.default_rng(n * 13 + d)
    check(rng.standard_normal((n, 3 * d), dtype=np.float32), n_head)


@pytest.mark.parametrize("n,first", [
    (1, 0), (7, 6), (20, 1), (40, 17),   # the last row alone; rows from inside a block of 16
    (300, 44), (300, 299),               # the first rows' block starts past a key block of 256
    (1024, 1000),
])
def test_rows_from_a_position_match_those_of_every_row(n, first):
    rng = np.random.default_rng(n + first)
    check(rng.standard_normal((n, 3 * 192), dtype=np.float32), 3, first)


def test_large_scores_stay_finite():
    rng = np.random.default_rng(5)
    qkv = rng.standard_normal((40, 3 * 64), dtype=np.float32)
    qkv[:, :128] *= 100                       # scores of order 1e4 / 8
    check(qkv, 2)


def test_future_tokens_do_not_change_the_past():
    rng = np.random.default_rng(6)
    qkv = rng.standard_normal((20, 3 * 128), dtype=np.float32)
    full = causal_self_attention(qkv, 4, 0)
    changed = qkv.copy()
    changed[10:] = rng.standard_normal((10, 3 * 128))
    np.testing.assert_array_equal(causal_self_attention(changed, 4, 0)[:10], full[:10])
