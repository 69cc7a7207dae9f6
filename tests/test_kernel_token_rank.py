"""token_rank against a count in NumPy: 1 + the number of logits strictly above the target's.

The kernel compares the same float32 values as the reference, so ranks must be equal exactly.
"""

import numpy as np
import pytest

from gpt2numba.kernels import token_rank


def rank_reference(logits, targets):
    """1 + #{j : logits[i, j] > logits[i, targets[i]]}, row by row, written out plainly."""
    chosen = logits[np.arange(len(logits)), targets][:, None]
    return 1 + np.sum(logits > chosen, axis=1)


@pytest.mark.parametrize("n, vocab", [(1, 1), (7, 17), (33, 50257)])
def test_matches_a_count(n, vocab):
    rng = np.random.default_rng(n + vocab)
    logits = (rng.standard_normal((n, vocab)) * 5).astype(np.float32)
    targets = rng.integers(0, vocab, n)
    out = token_rank(logits, targets)
    assert out.dtype == np.int64 and out.shape == (n,)
    np.testing.assert_array_equal(out, rank_reference(logits, targets))


def test_the_maximum_is_rank_one_and_ties_share_the_better_rank():
    logits = np.array([[0.0, 5.0, 1.0, 5.0], [2.0, 2.0, 2.0, 2.0], [3.0, -np.inf, 1.0, 2.0]],
                      np.float32)
    np.testing.assert_array_equal(token_rank(logits, np.array([1, 2, 1])), [1, 1, 4])
    np.testing.assert_array_equal(token_rank(logits, np.array([2, 0, 3])), [3, 1, 2])
