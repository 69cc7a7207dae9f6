"""head_log_softmax_at: scoring's head and log-softmax in one, without the logits in memory.

    log p(target) = log_softmax(x @ w.T)[target],   row by row

which is `log_softmax_at(linear(x, w, NO_BIAS), targets)`. Those two write and read back the
head's logits, n x vocab floats: 206 MB for a forward of 1024 rows of gpt2, in pages fresh
from the OS at every forward (an array that size is above glibc's mmap threshold, heap.py),
for one number per row. Here each of `linear`'s pieces (a panel of at most PANEL logits over a
block of rows, linear.panel_product) writes its logits to its thread's buffer and reduces
them there, while they are in cache: per row, their maximum top_p, the sum of exp(logit - top_p)
over the panel, and the target's logit if the panel holds it. The panels' sums are then joined
per row, rescaled to the row's maximum M:

    log p = (x_t - M) - log sum_p total_p * exp(top_p - M),   M = max_p top_p

log_softmax_at's arithmetic, its sum taken in two stages: every exponent is still <= 0, the
sums are float64, each exponential is exp32 of a float32 difference. So the two agree to the
rounding of the sum's order (tests/test_kernel_head_log_softmax.py), and -inf and NaN logits
give what they give there: a -inf target gets -inf, a row of all -inf NaN.
"""

import numpy as np
from numba import get_thread_id, prange

from ._jit import helper, kernel
from .exp import exp32
from .linear import NO_BIAS, PANEL, panel_buffers, panel_product, piece_bounds, split
from .log_softmax import _log_prob
from .outer_tile import line_aligned_empty
from .pieces import take_piece
from .softmax import exp_minus, row_max
from .threads import threads_now

NEG_INF = np.float32(-np.inf)


@helper
def top_and_total(row, length):
    """(max(row[:length]), sum of exp(row[j] - max) in float64) of a float32 row, length >= 1,
    whose row[:length] it replaces by those exponentials (softmax.exp_minus); total 0 when the
    maximum is -inf (every entry is: the panel adds nothing to the row's sum, and the row is
    left as it is)."""
    top = row_max(row, length)
    return top, (exp_minus(row, length, top) if top != NEG_INF else 0.0)


@kernel
def head_log_softmax_at(x, w, targets):
    """x [n, in] float32, w [vocab, >= in] float32 (the tied head: wte), targets [n] int64 in
    0..vocab-1 -> [n] float64, out[i] = log_softmax(x[i] @ w[:, :in].T)[targets[i]]."""
    n, m = x.shape[0], w.shape[0]
    threads = threads_now()
    panels, rows = split(n, m, threads)
    blocks = (n + rows - 1) // rows
    packs, sums = panel_buffers(threads, rows, x.shape[1])
    logits = line_aligned_empty((threads, min(rows, n), PANEL))   # a piece's, [i - i0]
    tops = np.empty((n, panels), dtype=np.float32)
    totals = np.empty((n, panels), dtype=np.float64)
    target_logits = np.empty(n, dtype=np.float32)
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(threads):   # linear's pieces, taken one at a time (pieces.py)
        thread = get_thread_id()
        piece = take_piece(counter)
        while piece < panels * blocks:
            panel, i0, i1, j0, j1 = piece_bounds(piece, blocks, rows, n, m)
            # the pieces' first row and column: an int64, as linear passes; a literal 0 is a
            # type of its own to Numba, which would compile panel_product and its callees again
            start = np.int64(0)
            panel_product(x[i0:i1], w[j0:j1], NO_BIAS, logits[thread], start, i1 - i0, start,
                          j1 - j0, packs[thread], sums[thread])
            for i in range(i0, i1):
                row = logits[thread, i - i0]
                if j0 <= targets[i] < j1:
                    target_logits[i] = row[targets[i] - j0]
                tops[i, panel], totals[i, panel] = top_and_total(row, j1 - j0)   # row: scratch
            piece = take_piece(counter)
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        top = row_max(tops[i], panels)
        total = 0.0
        for p in range(panels):
            total += totals[i, p] * exp32(tops[i, p] - top)
        out[i] = _log_prob(target_logits[i], top, total)
    return out
