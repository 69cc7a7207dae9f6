"""kl_divergence against sum p (log p - log q) in float64 NumPy.

Tolerance: 1e-5 absolute plus 1e-6 relative. The kernel's differences are float32, each within
half an ulp of logits of magnitude up to 40 (about 2e-6), and KL sums p-weighted differences of
two of them; the sums and logarithms are float64.
"""

import numpy as np
import pytest

from gpt2numba.kernels import kl_divergence


def log_softmax64(logits):
    x = logits.astype(np.float64)
    x = x - np.max(x, axis=1, keepdims=True)
    return x - np.log(np.sum(np.exp(x), axis=1, keepdims=True))


def kl_reference(logits_p, logits_q):
    """KL(softmax(p) || softmax(q)) row by row, float64; p = 0 entries add nothing."""
    log_p, log_q = log_softmax64(logits_p), log_softmax64(logits_q)
    p = np.exp(log_p)
    return np.sum(np.where(p > 0, p * (log_p - log_q), 0.0), axis=1)


@pytest.mark.parametrize("n, vocab", [(1, 1), (7, 17), (33, 50257)])
@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_matches_float64(n, vocab, scale):
    rng = np.random.default_rng(n * vocab)
    logits_p = (rng.standard_normal((n, vocab)) * scale).astype(np.float32)
    logits_q = (logits_p + rng.standard_normal((n, vocab)) * scale / 4).astype(np.float32)
    out = kl_divergence(logits_p, logits_q)
    assert out.dtype == np.float64 and out.shape == (n,)
    np.testing.assert_allclose(out, kl_reference(logits_p, logits_q), rtol=1e-6, atol=1e-5)


def test_identical_rows_give_zero_and_an_impossible_token_infinity():
    logits = np.random.default_rng(1).standard_normal((3, 50257)).astype(np.float32)
    assert np.all(kl_divergence(logits, logits) == 0)
    q = np.array([[0.0, -np.inf, 0.0]], np.float32)
    assert np.isposinf(kl_divergence(np.zeros((1, 3), np.float32), q)).all()
    assert kl_divergence(q, np.zeros((1, 3), np.float32))[0] == pytest.approx(np.log(1.5))
