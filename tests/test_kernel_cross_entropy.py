"""cross_entropy against -sum p log q in float64 NumPy.

Tolerance: 1e-5 absolute plus 1e-6 relative, as for kl_divergence (the same sums).
"""

import numpy as np
import pytest

from gpt2numba.kernels import cross_entropy, entropy


def log_softmax64(logits):
    x = logits.astype(np.float64)
    x = x - np.max(x, axis=1, keepdims=True)
    return x - np.log(np.sum(np.exp(x), axis=1, keepdims=True))


def cross_entropy_reference(logits_p, logits_q):
    """-sum_j p_j log q_j row by row, float64; p = 0 entries add nothing."""
    p, log_q = np.exp(log_softmax64(logits_p)), log_softmax64(logits_q)
    return -np.sum(np.where(p > 0, p * log_q, 0.0), axis=1)


@pytest.mark.parametrize("n, vocab", [(1, 1), (7, 17), (33, 50257)])
@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_matches_float64(n, vocab, scale):
    rng = np.random.default_rng(n * vocab + 1)
    logits_p = (rng.standard_normal((n, vocab)) * scale).astype(np.float32)
    logits_q = (rng.standard_normal((n, vocab)) * scale).astype(np.float32)
    out = cross_entropy(logits_p, logits_q)
    assert out.dtype == np.float64 and out.shape == (n,)
    np.testing.assert_allclose(out, cross_entropy_reference(logits_p, logits_q),
                               rtol=1e-6, atol=1e-5)


def test_of_a_row_with_itself_is_its_entropy():
    logits = (np.random.default_rng(2).standard_normal((4, 50257)) * 3).astype(np.float32)
    np.testing.assert_allclose(cross_entropy(logits, logits), entropy(logits), rtol=1e-9)
    q = np.array([[0.0, -np.inf, 0.0]], np.float32)
    assert np.isposinf(cross_entropy(np.zeros((1, 3), np.float32), q)).all()
