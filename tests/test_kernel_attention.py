"""causal_self_attention against the float64 definition (split heads, q k^T / sqrt(hd),
-inf above the diagonal, softmax, weighted sum of v, heads merged), for one text and for
several texts packed in one call (each text's rows against the definition on that text alone).

Tolerance: 4e-6 x max |v| absolute (each output is a convex combination of v's rows; the
weights are float32 softmax values, each within a few ulps).
"""

import numpy as np
import pytest

from gpt2numba.kernels import causal_self_attention
from gpt2numba.kernels.attention import SHORT_KEYS, stored_row_length
from support import reference


def check(qkv, n_head, first=0):
    out = causal_self_attention(qkv, np.arange(qkv.shape[0]), n_head, first)
    exact = reference.causal_self_attention(qkv.astype(np.float64), n_head)[first:]
    d = qkv.shape[1] // 3
    assert out.dtype == np.float32 and out.shape == (qkv.shape[0] - first, d)
    assert np.max(np.abs(out - exact)) <= 4e-6 * np.max(np.abs(qkv[:, 2 * d:]))


def packed(lengths):
    """positions [sum(lengths)] of texts of these lengths packed one after another, and the
    first row of each text."""
    positions = np.concatenate([np.arange(n) for n in lengths])
    return positions, np.concatenate([[0], np.cumsum(lengths)[:-1]])


@pytest.mark.parametrize("n,d,n_head", [
    (1, 768, 12), (7, 768, 12), (128, 768, 12), (1024, 768, 12), (5, 1600, 25), (13, 1280, 20),
    (1, 64, 1), (6, 64, 4), (33, 1024, 16),
    (300, 192, 3),   # a partial last block of query rows, keys in blocks of 256 then 44
    (9, 36, 3),      # head_dim 12: q k^T's depth is not a multiple of 8
    # q k^T's and p v's two forms: dot products of rows of qkv and weighted rows of v under
    # SHORT_KEYS keys, kT and the tiles against vT from there on; the last two texts' first
    # blocks take the one, their last blocks the other
    (SHORT_KEYS - 1, 192, 3), (SHORT_KEYS, 192, 3), (SHORT_KEYS + 1, 192, 3),
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
    full = causal_self_attention(qkv, np.arange(20), 4, 0)
    changed = qkv.copy()
    changed[10:] = rng.standard_normal((10, 3 * 128))
    np.testing.assert_array_equal(causal_self_attention(changed, np.arange(20), 4, 0)[:10],
                                  full[:10])


@pytest.mark.parametrize("lengths,d,n_head", [
    ([3, 1, 5], 192, 3),
    ([24] * 40, 768, 12),                  # many short texts, blocks of 16 then 8
    ([1] * 7, 64, 2),                      # texts of one token attend to themselves only
    ([17, 300, 16, 33, 1, 2], 192, 3),     # a text over a key block of 256, odd lengths
    ([1024], 768, 12),                     # one text is one segment
    ([1000, 24], 384, 6),
])
def test_packed_texts_match_each_text_alone(lengths, d, n_head):
    rng = np.random.default_rng(sum(lengths) + d)
    qkv = rng.standard_normal((sum(lengths), 3 * d), dtype=np.float32)
    positions, starts = packed(lengths)
    out = causal_self_attention(qkv, positions, n_head, 0)
    assert out.dtype == np.float32 and out.shape == (sum(lengths), d)
    for a, n in zip(starts, lengths):
        text = qkv[a:a + n]
        exact = reference.causal_self_attention(text.astype(np.float64), n_head)
        assert np.max(np.abs(out[a:a + n] - exact)) <= 4e-6 * np.max(np.abs(text[:, 2 * d:]))
        # the same blocks and sums as the text's own call: bit for bit
        np.testing.assert_array_equal(out[a:a + n],
                                      causal_self_attention(text, np.arange(n), n_head, 0))


@pytest.mark.parametrize("first", [0, 2, 3, 9, 10, 40])
def test_packed_rows_from_a_row(first):
    lengths = [3, 7, 1, 30]
    rng = np.random.default_rng(first)
    qkv = rng.standard_normal((sum(lengths), 3 * 128), dtype=np.float32)
    positions, _ = packed(lengths)
    all_rows = causal_self_attention(qkv, positions, 2, 0)
    np.testing.assert_array_equal(causal_self_attention(qkv, positions, 2, first),
                                  all_rows[first:])


def test_a_text_never_sees_another():
    rng = np.random.default_rng(8)
    qkv = rng.standard_normal((30, 3 * 64), dtype=np.float32)
    positions, _ = packed([10, 10, 10])
    before = causal_self_attention(qkv, positions, 2, 0)
    changed = qkv.copy()
    changed[:10] = rng.standard_normal((10, 3 * 64))     # the first text only
    changed[20:] = rng.standard_normal((10, 3 * 64))     # and the last
    np.testing.assert_array_equal(causal_self_attention(changed, positions, 2, 0)[10:20],
                                  before[10:20])


@pytest.mark.parametrize("n_in,stored", [(768, 768), (1024, 1040), (1280, 1280), (1600, 1600),
                                         (3072, 3088), (4096, 4112), (6400, 6400), (1, 1)])
def test_rows_of_a_multiple_of_4_kib_are_padded_by_one_cache_line(n_in, stored):
    assert stored_row_length(n_in) == stored
