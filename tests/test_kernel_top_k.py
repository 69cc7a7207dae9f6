"""top_k against a stable sort and a float64 log-softmax in NumPy.

The ids must be equal exactly (the kernel orders the same float32 values, the lower id first
among equal logits, as a stable sort of -logits does). Log-probabilities: 2e-6 absolute plus
1e-7 relative, as for log_softmax_at (the same arithmetic).
"""

import numpy as np
import pytest

from gpt2numba.kernels import top_k


def top_k_reference(logits, k):
    """(ids [n, k], log p [n, k]) of the k largest logits of each row, in float64."""
    ids = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    x = logits.astype(np.float64)
    top = np.max(x, axis=1, keepdims=True)
    log_p = x - top - np.log(np.sum(np.exp(x - top), axis=1, keepdims=True))
    return ids, np.take_along_axis(log_p, ids, axis=1)


@pytest.mark.parametrize("n, vocab, k", [(1, 1, 1), (7, 17, 5), (9, 17, 17), (33, 50257, 20)])
def test_matches_a_sort(n, vocab, k):
    rng = np.random.default_rng(n * vocab + k)
    logits = (rng.standard_normal((n, vocab)) * 8).astype(np.float32)
    ids, logprobs = top_k(logits, k)
    assert ids.dtype == np.int64 and logprobs.dtype == np.float64
    assert ids.shape == logprobs.shape == (n, k)
    ref_ids, ref_logprobs = top_k_reference(logits, k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(logprobs, ref_logprobs, rtol=1e-7, atol=2e-6)


def test_ties_keep_the_lower_id_first():
    logits = np.array([[1.0, 3.0, 3.0, 0.0, 3.0]], np.float32)
    ids, logprobs = top_k(logits, 4)
    np.testing.assert_array_equal(ids, [[1, 2, 4, 0]])
    assert logprobs[0, 0] == logprobs[0, 2]


def test_nan_entries_come_after_every_number():
    logits = np.array([[np.nan, 1.0, np.nan, 2.0, 0.5]], np.float32)
    ids, _ = top_k(logits, 3)
    np.testing.assert_array_equal(ids, [[3, 1, 4]])
