"""entropy against -sum p log p in float64 NumPy.

Tolerance: 1e-6 absolute plus 1e-7 relative. The kernel's differences are float32 (within half
an ulp of logits of magnitude up to 40: a few 1e-6 relative each, averaged under p), each
exponential within 2 ulp, the sums and the logarithm float64.
"""

import numpy as np
import pytest

from gpt2numba.kernels import entropy


def entropy_reference(logits):
    """H(softmax(logits[i])) in float64, written out plainly; p = 0 entries add nothing."""
    x = logits.astype(np.float64)
    log_p = x - np.max(x, axis=1, keepdims=True)
    log_p -= np.log(np.sum(np.exp(log_p), axis=1, keepdims=True))
    p = np.exp(log_p)
    return -np.sum(np.where(p > 0, p * log_p, 0.0), axis=1)


@pytest.mark.parametrize("n, vocab", [(1, 1), (7, 17), (33, 50257)])
@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_matches_float64(n, vocab, scale):
    rng = np.random.default_rng(n * vocab)
    logits = (rng.standard_normal((n, vocab)) * scale).astype(np.float32)
    out = entropy(logits)
    assert out.dtype == np.float64 and out.shape == (n,)
    np.testing.assert_allclose(out, entropy_reference(logits), rtol=1e-7, atol=1e-6)


def test_uniform_rows_and_impossible_tokens():
    logits = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, -np.inf, 0.0, -np.inf], [90.0, 0.0, 0.0, 0.0]],
                      np.float32)
    out = entropy(logits)
    assert out[0] == pytest.approx(np.log(4), abs=1e-7)
    assert out[1] == pytest.approx(np.log(2), abs=1e-7)      # -inf logits: p = 0, no NaN
    assert out[2] == pytest.approx(0.0, abs=1e-30)            # one certain token
