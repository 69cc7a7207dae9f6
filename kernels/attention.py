"""causal_self_attention: GPT-2's masked multi-head attention, from the fused q|k|v projection.

For each head h, with head_dim = d / n_head and q, k, v the head's columns of qkv:

    scores = q k^T / sqrt(head_dim)              [n, n]
    scores[t, u] = -inf for u > t                (a token sees itself and the past only)
    p = softmax(scores) row by row
    out[:, head h] = p v                         [n, head_dim]

Only the rows of positions first..n-1 are computed (every row when first = 0): the model's
last block asks only for the positions whose logits are wanted. Those rows still attend to
every position's k and v.

The heads are independent: they are the parallel loop. Within a head, k and v are copied once
into kT and vT [head_dim, n] (contiguous along positions; kT already multiplied by
1 / sqrt(head_dim), which for head_dim = 64 is 1/8, exact), and the query rows go by blocks of
ROWS; each block is finished (scores, softmax, p v) before the next begins, so its scores
([ROWS, n] floats: 64 KiB at n = 1024) stay in L2. The masked half is never computed: a
block's scores stop at its own last position i1, and row t's softmax stops at u = t (the few
entries t < u < i1 are set to 0 before p v).

- q k^T in "outer-product" form: scores[r, u] += q[r, p] * kT[p, u], eight p at a time (eight
  multiply-adds per load and store of a score). The innermost loop runs along a contiguous row
  of kT, so LLVM vectorises it with no horizontal sum (a dot product over head_dim = 64 would
  pay one per score). Keys go by blocks of KEYS, so the block of scores being summed stays in
  L1 while p runs over head_dim. Its bounds are unsigned: with a signed start Numba checks
  every index for negative values, and that check alone keeps LLVM from vectorising the loop.
- softmax without its division: exp(s - max) and the row's sum (softmax.exp_minus_max); p v
  is then divided by the sum: head_dim divisions per row instead of t + 1.
- p v in "dot" form over the block's i1 positions (matmul.py's register tiles against vT): a
  depth of up to n, long enough for the horizontal sums not to matter.
Rows whose length is a multiple of 4 KiB (kT, vT and the scores at n = 1024) are padded by a
cache line, as linear's weights are (linear.stored_row_length): the rows a loop reads together
would otherwise fall in the same L1 cache set.
"""

import numpy as np
from numba import prange

from ._jit import helper, kernel
from .linear import stored_row_length
from .matmul import matmul_block
from .softmax import exp_minus_max

ZERO = np.float32(0.0)
ONE = np.float32(1.0)
ROWS = 16    # query rows per block
KEYS = 256   # keys per block of scores: ROWS x KEYS x 4 bytes = 16 KiB in L1


@helper
def transposed(qkv, k0, head_dim, scale):
    """[head_dim, >= n] float32 with [p, u] = qkv[u, k0 + p] * scale: a head's k or v,
    transposed, its rows padded as stored_row_length(n)."""
    n = qkv.shape[0]
    kt = np.empty((head_dim, stored_row_length(n)), dtype=np.float32)
    for block in range(0, n, 16):     # 16 rows of qkv in L1, written 16 floats at a time
        u0, u1 = np.uint64(block), np.uint64(min(block + 16, n))
        for p in range(head_dim):
            for u in range(u0, u1):
                kt[p, u] = qkv[u, k0 + p] * scale
    return kt


@helper
def key_scores(qkv, q0, kt, scores, i0, i1, head_dim):
    """scores[r, :i1] = q[i0 + r] . kT[:, :i1] for r < i1 - i0 (q = qkv[:, q0:q0 + head_dim])."""
    p8 = head_dim // 8 * 8
    for block in range(0, i1, KEYS):
        # unsigned bounds: Numba then drops the negative-index check that blocks vectorising
        j0, j1 = np.uint64(block), np.uint64(min(block + KEYS, i1))
        for r in range(i1 - i0):
            row = scores[r]
            for u in range(j0, j1):
                row[u] = ZERO
        for p in range(0, p8, 8):
            for r in range(i1 - i0):
                q = i0 + r
                s0, s1 = qkv[q, q0 + p], qkv[q, q0 + p + 1]
                s2, s3 = qkv[q, q0 + p + 2], qkv[q, q0 + p + 3]
                s4, s5 = qkv[q, q0 + p + 4], qkv[q, q0 + p + 5]
                s6, s7 = qkv[q, q0 + p + 6], qkv[q, q0 + p + 7]
                for u in range(j0, j1):
                    scores[r, u] += (s0 * kt[p, u] + s1 * kt[p + 1, u]
                                     + s2 * kt[p + 2, u] + s3 * kt[p + 3, u]
                                     + s4 * kt[p + 4, u] + s5 * kt[p + 5, u]
                                     + s6 * kt[p + 6, u] + s7 * kt[p + 7, u])
        for p in range(p8, head_dim):
            for r in range(i1 - i0):
                s = qkv[i0 + r, q0 + p]
                for u in range(j0, j1):
                    scores[r, u] += s * kt[p, u]


@kernel
def causal_self_attention(qkv, n_head, first):
    """qkv [n, 3d] float32 (q | k | v, heads side by side in each), 0 <= first < n
    -> [n - first, d] float32: the heads' outputs at positions first..n-1."""
    n, d = qkv.shape[0], qkv.shape[1] // 3
    head_dim = d // n_head
    scale = ONE / np.sqrt(np.float32(head_dim))
    out = np.empty((n - first, d), dtype=np.float32)
    for h in prange(n_head):
        q0, k0, v0 = h * head_dim, d + h * head_dim, 2 * d + h * head_dim
        kt = transposed(qkv, k0, head_dim, scale)                       # [hd, n] / sqrt(hd)
        vt = transposed(qkv, v0, head_dim, ONE)                         # [hd, n]
        scores = np.empty((ROWS, kt.shape[1]), dtype=np.float32)        # rows padded as kT's
        block_out = np.empty((ROWS, head_dim), dtype=np.float32)
        totals = np.empty(ROWS, dtype=np.float64)
        for i0 in range(first, n, ROWS):
            i1 = min(i0 + ROWS, n)
            key_scores(qkv, q0, kt, scores, i0, i1, head_dim)           # scores[:, :i1]
            for t in range(i0, i1):
                row = scores[t - i0]
                totals[t - i0] = exp_minus_max(row, t + 1)
                for u in range(t + 1, i1):
                    row[u] = ZERO                                       # the causal mask
            matmul_block(scores, vt, block_out, 0, i1 - i0, 0, head_dim, i1)   # p v, u < i1
            for t in range(i0, i1):
                inv_total = np.float32(1.0 / totals[t - i0])
                for j in range(head_dim):
                    out[t - first, q0 + j] = block_out[t - i0, j] * inv_total
    return out
