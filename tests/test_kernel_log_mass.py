"""log_mass against log(sum of the set's softmax probabilities) in float64 NumPy.

Tolerance: 2e-6 absolute plus 1e-7 relative on the log-probability, as for log_softmax_at:
float32 differences, 2-ulp exponentials, float64 sums and logarithms.
"""

import numpy as np
import pytest

from gpt2numba.kernels import log_mass


def log_mass_reference(logits, members):
    """log sum_{j in members} softmax(logits[i])_j, float64, written out plainly."""
    x = logits.astype(np.float64)
    log_p = x - np.max(x, axis=1, keepdims=True)
    log_p -= np.log(np.sum(np.exp(log_p), axis=1, keepdims=True))
    inside = log_p[:, members]
    top = np.max(inside, axis=1, keepdims=True)
    return top[:, 0] + np.log(np.sum(np.exp(inside - top), axis=1))


@pytest.mark.parametrize("n, vocab", [(1, 2), (7, 17), (33, 50257)])
@pytest.mark.parametrize("share", [0.01, 0.3, 1.0])
def test_matches_float64(n, vocab, share):
    rng = np.random.default_rng(n * vocab)
    logits = (rng.standard_normal((n, vocab)) * 10).astype(np.float32)
    members = rng.random(vocab) < share
    members[0] = True
    out = log_mass(logits, members)
    assert out.dtype == np.float64 and out.shape == (n,)
    np.testing.assert_allclose(out, log_mass_reference(logits, members), rtol=1e-7, atol=2e-6)


def test_a_set_far_below_the_rest_keeps_its_log_probability():
    logits = np.array([[0.0, 0.0, -200.0, -201.0]], np.float32)   # exp(-200) underflows float32
    members = np.array([False, False, True, True])
    expected = log_mass_reference(logits, members)
    assert np.isfinite(expected)
    np.testing.assert_allclose(log_mass(logits, members), expected, rtol=1e-7, atol=2e-6)


def test_an_empty_set_is_minus_infinity_and_the_whole_vocabulary_zero():
    logits = np.array([[1.0, 2.0, 3.0]], np.float32)
    assert np.isneginf(log_mass(logits, np.zeros(3, bool))).all()
    assert log_mass(logits, np.ones(3, bool))[0] == pytest.approx(0.0, abs=1e-7)
