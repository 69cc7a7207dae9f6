"""head_log_softmax_at (log_softmax(x @ w.T) at the targets, without the logits) against the same
in float64 NumPy.

Tolerance per row: the kernel's logits are float32 sums, each within 2e-6 x sum_p |x[i,p]
w[j,p]| of the exact logit (test_kernel_linear.py's bound); log p moves by at most the target's
error plus the largest of the row's (the log-sum-exp moves by at most its arguments' largest
error); then log_softmax_at's own tolerance, 2e-6 absolute plus 1e-7 relative.
Shapes: one row to more than linear.PACKED_MIN_ROWS (where its pieces switch from dot tiles to
packed outer products), vocabularies of one logit, of a partial panel, of one panel and one
more, and GPT-2's; depths of 1 to 768; 1 and 2 threads; no rows at all.
"""

import numba
import numpy as np
import pytest

from gpt2numba.kernels import head_log_softmax_at
from gpt2numba.kernels.linear import PACKED_MIN_ROWS, PANEL


def reference_and_bound(x, w, targets):
    """(log p of targets under softmax(x @ w.T) in float64, the tolerance of each row)."""
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    logits = x64 @ w64.T
    top = logits.max(axis=1, keepdims=True)
    log_total = np.log(np.exp(logits - top).sum(axis=1))
    rows = np.arange(len(x))
    exact = logits[rows, targets] - top[:, 0] - log_total
    logit_bound = 2e-6 * (np.abs(x64) @ np.abs(w64).T)
    bound = logit_bound[rows, targets] + logit_bound.max(axis=1) + 2e-6 + 1e-7 * np.abs(exact)
    return exact, bound


def check(x, w, targets):
    w.flags.writeable = False   # as the model's wte
    out = head_log_softmax_at(x, w, targets)
    exact, bound = reference_and_bound(x, w, targets)
    assert out.dtype == np.float64 and out.shape == targets.shape
    assert np.all(np.abs(out - exact) <= bound), np.max(np.abs(out - exact) - bound)


SHAPES = [  # (n, vocab, depth)
    *((n, vocab, depth) for n in (1, 7, PACKED_MIN_ROWS - 1, PACKED_MIN_ROWS + 3, 300)
      for vocab in (1, 17, PANEL + 1) for depth in (1, 37, 768)),
    *((n, 50257, 768) for n in (1, 7, PACKED_MIN_ROWS + 3)),   # GPT-2's head
]


@pytest.mark.parametrize("n,vocab,depth", SHAPES)
def test_matches_float64(n, vocab, depth):
    rng = np.random.default_rng(n * 7919 + vocab * 31 + depth)
    x = rng.standard_normal((n, depth), dtype=np.float32)
    w = rng.standard_normal((vocab, depth), dtype=np.float32) * np.float32(3 / np.sqrt(depth))
    check(x, w, rng.integers(0, vocab, n))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [PACKED_MIN_ROWS - 1, 600])
def test_every_split_matches_float64(threads, n):
    rng = np.random.default_rng(n + threads)
    x = rng.standard_normal((n, 64), dtype=np.float32)
    w = rng.standard_normal((5 * PANEL + 7, 64), dtype=np.float32) * np.float32(0.4)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        check(x, w, rng.integers(0, len(w), n))
    finally:
        numba.set_num_threads(before)


def test_no_rows():
    w = np.ones((PANEL + 1, 4), np.float32)
    w.flags.writeable = False
    out = head_log_softmax_at(np.ones((0, 4), np.float32), w, np.zeros(0, np.int64))
    assert out.dtype == np.float64 and out.shape == (0,)


def panels_of_minus_inf(n, rows_per_panel):
    """x [n, 1] and w [3 * PANEL, 1] whose float32 logits are -inf in the first
    `rows_per_panel` rows of w (1e20 * -1e20 overflows) and exactly 1 in the others."""
    x = np.full((n, 1), 1e20, np.float32)
    w = np.full((3 * PANEL, 1), 1e-20, np.float32)
    w[:rows_per_panel] = -1e20
    return x, w


@pytest.mark.parametrize("n", [3, PACKED_MIN_ROWS])
def test_a_panel_of_minus_inf_logits_adds_nothing(n):
    # The first panel is all -inf: it holds no probability; the others share it equally.
    x, w = panels_of_minus_inf(n, PANEL)
    w.flags.writeable = False
    targets = np.array([0, PANEL - 1, PANEL, 3 * PANEL - 1] * n, np.int64)[:n]
    out = head_log_softmax_at(x, w, targets)
    finite = targets >= PANEL
    assert np.isneginf(out[~finite]).all()
    np.testing.assert_allclose(out[finite], -np.log(2 * PANEL), rtol=0, atol=1e-6)


def test_a_row_of_minus_inf_logits_is_nan_as_in_log_softmax_at():
    x, w = panels_of_minus_inf(2, 3 * PANEL)
    w.flags.writeable = False
    assert np.isnan(head_log_softmax_at(x, w, np.array([0, 2 * PANEL], np.int64))).all()


def test_a_nan_logit_makes_its_row_nan():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8), dtype=np.float32)
    x[1, 0] = np.nan                                   # every logit of row 1
    w = rng.standard_normal((3 * PANEL, 8), dtype=np.float32)
    w[2 * PANEL + 5, 3] = np.nan                       # one logit of every row, in the last panel
    w.flags.writeable = False
    out = head_log_softmax_at(x, w, np.array([0, 1, 2], np.int64))
    assert np.isnan(out).all()
