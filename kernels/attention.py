"""causal_self_attention: GPT-2's masked multi-head attention, from the fused q|k|v projection.

For each head h, with head_dim = d / n_head and q, k, v the head's columns of qkv:

    scores = q k^T / sqrt(head_dim)              [n, n]
    scores[t, u] = -inf for u > t                (a token sees itself and the past only)
    p = softmax(scores) row by row
    out[:, head h] = p v                         [n, head_dim]

The heads are independent: they are the parallel loop. Within a head, k and v are first
copied out of qkv into contiguous rows (v transposed), so that both products are the
row-by-row dot products of matmul.py; the masked half of the scores is never computed (each
block of 4 query rows stops at its own last position), and the product with v sums only
over the positions each row can see.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .matmul import matmul_block
from .softmax import softmax_inplace

ZERO = np.float32(0.0)
ONE = np.float32(1.0)
ROWS = 4  # query rows per block: the height of matmul's register tile


@kernel
def causal_self_attention(qkv, n_head):
    """qkv [n, 3d] float32 (q | k | v, heads side by side in each) -> [n, d] float32."""
    n, d = qkv.shape[0], qkv.shape[1] // 3
    head_dim = d // n_head
    scale = ONE / np.sqrt(np.float32(head_dim))
    out = np.empty((n, d), dtype=np.float32)
    for h in prange(n_head):
        q = np.ascontiguousarray(qkv[:, h * head_dim:(h + 1) * head_dim])               # [n, hd]
        k = np.ascontiguousarray(qkv[:, d + h * head_dim:d + (h + 1) * head_dim])       # [n, hd]
        v = qkv[:, 2 * d + h * head_dim:2 * d + (h + 1) * head_dim]
        vt = np.ascontiguousarray(v.T)                                                  # [hd, n]
        scores = np.empty((n, n), dtype=np.float32)
        for i0 in range(0, n, ROWS):
            i1 = min(i0 + ROWS, n)
            matmul_block(q, k, scores, i0, i1, 0, i1, head_dim)     # scores[i0:i1, :i1]
            for t in range(i0, i1):
                row = scores[t]
                for u in range(t + 1):
                    row[u] *= scale
                softmax_inplace(row, t + 1)
                for u in range(t + 1, i1):
                    row[u] = ZERO                                     # the causal mask
        head_out = np.empty((n, head_dim), dtype=np.float32)
        for i0 in range(0, n, ROWS):
            i1 = min(i0 + ROWS, n)
            matmul_block(scores, vt, head_out, i0, i1, 0, head_dim, i1)  # sum over u < i1
        out[:, h * head_dim:(h + 1) * head_dim] = head_out
    return out
