"""causal_self_attention: GPT-2's masked multi-head attention, from the fused q|k|v projection.

For each head h, with head_dim = d / n_head and q, k, v the head's columns of qkv:

    scores = q k^T / sqrt(head_dim)              [n, n]
    scores[t, u] = -inf for u > t                (a token sees itself and the past only)
    p = softmax(scores) row by row
    out[:, head h] = p v                         [n, head_dim]

Several texts can share one call, packed one after another in the rows of qkv: `positions`
gives each row's position in its own text (0 where a text begins), and row t attends to the
rows t - positions[t] .. t, its own text's, only. One text is positions 0..n-1. No n x n mask
is ever built: each text is computed on its own rows and keys.

Only the rows of positions first..n-1 are computed (every row when first = 0): the model's
last block asks only for the positions whose logits are wanted. Those rows still attend to
every earlier position's k and v.

The work is cut in two parallel loops:
- each (head, text): its k and v are copied once into kT and vT [head_dim, length]
  (contiguous along positions; kT already multiplied by 1 / sqrt(head_dim), which for
  head_dim = 64 is 1/8, exact); a text of fewer than SHORT_KEYS tokens needs neither (below);
- each (head, block of ROWS query rows of one text): scores, softmax and p v of those rows,
  finished before the next block, so that its scores ([ROWS, length] floats: 64 KiB at 1024)
  stay in L2. These pieces are many (12 heads x 64 blocks for gpt2 at 1024 tokens), enough
  for every core of a big machine, and of unequal cost: a block late in a text attends to
  more keys than an early one. Numba cuts a parallel loop into one run of consecutive
  pieces per thread, so each head's blocks are taken in the order first, last, second,
  second to last, ...: any run of them pairs cheap blocks with dear ones. The masked half is
  never computed: a block's scores stop at its own last position i1, and row t's softmax
  stops at u = t (the few entries t < u < i1 are set to 0 before p v in dot form; the rows
  of v times their weights read only the keys each row sees).

- q k^T in "outer-product" form: scores[r, u] += q[r, p] * kT[p, u], eight p at a time (eight
  multiply-adds per load and store of a score). The innermost loop runs along a contiguous row
  of kT, so LLVM vectorises it with no horizontal sum (a dot product over head_dim = 64 would
  pay one per score). Keys go by blocks of KEYS, so the block of scores being summed stays in
  L1 while p runs over head_dim. Its bounds are unsigned: with a signed start Numba checks
  every index for negative values, and that check alone keeps LLVM from vectorising the loop.
  Under SHORT_KEYS keys that loop runs mostly as its scalar rest, and the copy into kT costs
  more than it saves: there each score is a dot product of a row of q and a row of k, both
  read straight from qkv (`query_key_dots`), of the unmasked keys only.
- softmax without its division: exp(s - max) and the row's sum (softmax.exp_minus_max); p v
  is then divided by the sum: head_dim divisions per row instead of t + 1.
- p v in "dot" form over the block's keys (matmul.py's register tiles against vT): a depth of
  up to the text's length, long enough for the horizontal sums not to matter. Under SHORT_KEYS
  keys it is not (a tile's depth loop then runs mostly as its scalar rest, and every sum ends
  in a horizontal sum), so p v is summed there as rows of v, each times its weights
  (`weighted_values`), read straight from qkv: what many short texts, packed, run on.
Rows whose length is a multiple of 4 KiB (kT, vT and the scores of a text of 1024) are padded
by a cache line (`stored_row_length`): the L1 cache (32 KiB, 8 ways) maps addresses 4 KiB apart
to the same set, so the rows a loop reads together would evict one another.
"""

import numpy as np
from numba import prange
from numba.extending import register_jitable

from ._jit import helper, kernel
from .matmul import matmul_block
from .softmax import exp_minus_max

ZERO = np.float32(0.0)
PAD = 16  # floats: one cache line
ONE = np.float32(1.0)
ROWS = 16    # query rows per block
KEYS = 256   # keys per block of scores: ROWS x KEYS x 4 bytes = 16 KiB in L1
SHORT_KEYS = 64   # under this many keys, p v as weighted rows of v (see the module docstring)


@register_jitable  # a Python function too, for the tests
def stored_row_length(n):
    """The row length, in floats, of a row of n floats as attention stores it: n, and PAD more
    when n floats are a multiple of 4 KiB (see the module docstring)."""
    return n + PAD if n * 4 % 4096 == 0 else n


@helper
def texts_of(positions, first):
    """[T, 2] int64: (a, e) of each text that rows first..n-1 belong to, in order: the text
    of rows a..e-1 (positions[a] = 0, or a = 0 where the rows begin inside a text)."""
    n = positions.shape[0]
    texts = np.empty((n - first, 2), dtype=np.int64)
    count = 0
    a = max(first - positions[first], 0)
    while a < n:
        e = a + 1
        while e < n and positions[e] != 0:
            e += 1
        texts[count, 0], texts[count, 1] = a, e
        count += 1
        a = e
    return texts[:count]


@helper
def query_blocks(positions, first):
    """[B, 3] int64: (i0, i1, s) of each block of query rows, in order from row first: rows
    i0..i1-1 (at most ROWS) of text s of texts_of(positions, first)."""
    n = positions.shape[0]
    blocks = np.empty((n - first, 3), dtype=np.int64)
    count, text = 0, 0
    i0 = first
    while i0 < n:
        if positions[i0] == 0 and i0 > first:
            text += 1
        i1 = i0 + 1
        while i1 < n and i1 - i0 < ROWS and positions[i1] != 0:
            i1 += 1
        blocks[count, 0], blocks[count, 1], blocks[count, 2] = i0, i1, text
        count += 1
        i0 = i1
    return blocks[:count]


@helper
def cheap_and_dear_in_turn(count):
    """[count] int64: 0, count - 1, 1, count - 2, ...: an order of blocks of rising cost in
    which any run of consecutive ones costs about its length times the average."""
    order = np.empty(count, dtype=np.int64)
    for k in range(count):
        order[k] = k // 2 if k % 2 == 0 else count - 1 - k // 2
    return order


@helper
def transpose_into(kt, qkv, k0, a, e, scale):
    """kt[p, u - a] = qkv[u, k0 + p] * scale for u in a..e-1, p < kt.shape[0]: a head's k or v
    of one text, transposed (kt [head_dim, >= e - a] float32)."""
    head_dim = kt.shape[0]
    for block in range(a, e, 16):     # 16 rows of qkv in L1, written 16 floats at a time
        u0, u1 = np.uint64(block), np.uint64(min(block + 16, e))
        for p in range(head_dim):
            for u in range(u0, u1):
                kt[p, u - a] = qkv[u, k0 + p] * scale


@helper
def key_scores(qkv, q0, kt, scores, i0, rows, keys, head_dim):
    """scores[r, :keys] = q[i0 + r] . kT[:, :keys] for r < rows (q = qkv[:, q0:q0 + head_dim])."""
    p8 = head_dim // 8 * 8
    for block in range(0, keys, KEYS):
        # unsigned bounds: Numba then drops the negative-index check that blocks vectorising
        j0, j1 = np.uint64(block), np.uint64(min(block + KEYS, keys))
        for r in range(rows):
            row = scores[r]
            for u in range(j0, j1):
                row[u] = ZERO
        for p in range(0, p8, 8):
            for r in range(rows):
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
            for r in range(rows):
                s = qkv[i0 + r, q0 + p]
                for u in range(j0, j1):
                    scores[r, u] += s * kt[p, u]


@helper
def query_key_dots(qkv, q0, k0, head_dim, a, i0, rows, scores, scale):
    """scores[r, u] = q[i0 + r] . k[a + u] * scale for r < rows and the keys u <= i0 + r - a
    that row sees, q = qkv[:, q0:q0 + head_dim] and k = qkv[:, k0:k0 + head_dim]: q kT of a
    short text as dot products (see the module docstring)."""
    for r in range(rows):
        q = qkv[i0 + r, q0:q0 + head_dim]
        for u in range(i0 + r - a + 1):
            k = qkv[a + u, k0:k0 + head_dim]
            total = ZERO
            for j in range(head_dim):
                total += q[j] * k[j]
            scores[r, u] = total * scale


@helper
def weighted_values(scores, qkv, v0, a, r0, rows, keys, block_out):
    """block_out[r, :] = sum over u <= r0 + r of scores[r, u] * v[a + u], for r < rows, u < keys:
    the rows of v (v = qkv[:, v0:v0 + head_dim]) times their weights, a row of the block's
    query rows r0.. at a time (block_out [>= rows, head_dim] float32)."""
    head_dim = block_out.shape[1]
    for r in range(rows):
        for j in range(head_dim):
            block_out[r, j] = ZERO
    for u in range(keys):
        v = qkv[a + u, v0:v0 + head_dim]
        for r in range(max(u - r0, 0), rows):   # the rows that see key u
            weight = scores[r, u]
            for j in range(head_dim):
                block_out[r, j] += weight * v[j]


@helper
def attend_block(qkv, q0, kt, vt, i0, i1, a, out, first, scale):
    """out[t - first, q0:q0 + head_dim] for the query rows t = i0..i1-1 of the text that begins
    at row a: softmax(q k^T * scale) v over its keys a..t. kt (k^T, times scale already) and
    vt [head_dim, >= i1 - a] are read only from SHORT_KEYS keys on."""
    head_dim = kt.shape[0]
    rows, keys = i1 - i0, i1 - a
    k0, v0 = q0 + qkv.shape[1] // 3, q0 + 2 * (qkv.shape[1] // 3)   # the head's k and v in qkv
    short = keys < SHORT_KEYS
    row_length = keys if short else kt.shape[1]                     # padded as kT's rows
    scores = np.empty((ROWS, row_length), dtype=np.float32)
    block_out = np.empty((ROWS, head_dim), dtype=np.float32)
    totals = np.empty(ROWS, dtype=np.float64)
    if short:
        query_key_dots(qkv, q0, k0, head_dim, a, i0, rows, scores, scale)
    else:
        key_scores(qkv, q0, kt, scores, i0, rows, keys, head_dim)   # scores[:, :keys]
    for r in range(rows):
        seen = i0 + r - a + 1                                       # keys a..t
        totals[r] = exp_minus_max(scores[r], seen)
    if short:                                                       # p v
        weighted_values(scores, qkv, v0, a, i0 - a, rows, keys, block_out)
    else:
        for r in range(rows):
            scores[r, i0 + r - a + 1:keys] = ZERO                   # the causal mask
        matmul_block(scores, vt, block_out, 0, rows, 0, head_dim, keys)
    for r in range(rows):
        inv_total = np.float32(1.0 / totals[r])
        for j in range(head_dim):
            out[i0 + r - first, q0 + j] = block_out[r, j] * inv_total


@kernel
def causal_self_attention(qkv, positions, n_head, first):
    """qkv [n, 3d] float32 (q | k | v, heads side by side in each), positions [n] int64 (each
    row's position in its own text: 0..n-1 for one text), 0 <= first < n -> [n - first, d]
    float32: the heads' outputs at rows first..n-1.

    positions must be a run 0, 1, 2, ... per text (the caller checks; the kernel does not).
    """
    n, d = qkv.shape[0], qkv.shape[1] // 3
    head_dim = d // n_head
    scale = ONE / np.sqrt(np.float32(head_dim))
    texts = texts_of(positions, first)
    lengths = np.empty(texts.shape[0], dtype=np.int64)       # stored row length of each text
    offsets = np.zeros(texts.shape[0] + 1, dtype=np.int64)   # where its kT begins in kv[., h]
    for s in range(texts.shape[0]):
        length = texts[s, 1] - texts[s, 0]
        lengths[s] = stored_row_length(length) if length >= SHORT_KEYS else 0
        offsets[s + 1] = offsets[s] + head_dim * lengths[s]
    kv = np.empty((2, n_head, offsets[-1]), dtype=np.float32)   # kT, vT of each head and text
    for piece in prange(n_head * texts.shape[0]):
        h, s = piece // texts.shape[0], piece % texts.shape[0]
        a, e = texts[s, 0], texts[s, 1]
        kt = kv[0, h, offsets[s]:offsets[s + 1]].reshape((head_dim, lengths[s]))
        vt = kv[1, h, offsets[s]:offsets[s + 1]].reshape((head_dim, lengths[s]))
        if e - a >= SHORT_KEYS:
            transpose_into(kt, qkv, d + h * head_dim, a, e, scale)      # k / sqrt(hd)
            transpose_into(vt, qkv, 2 * d + h * head_dim, a, e, ONE)
    blocks = query_blocks(positions, first)
    blocks = blocks[cheap_and_dear_in_turn(blocks.shape[0])]
    out = np.empty((n - first, d), dtype=np.float32)
    for piece in prange(n_head * blocks.shape[0]):
        h, b = piece // blocks.shape[0], piece % blocks.shape[0]
        i0, i1, s = blocks[b, 0], blocks[b, 1], blocks[b, 2]
        kt = kv[0, h, offsets[s]:offsets[s + 1]].reshape((head_dim, lengths[s]))
        vt = kv[1, h, offsets[s]:offsets[s + 1]].reshape((head_dim, lengths[s]))
        attend_block(qkv, h * head_dim, kt, vt, i0, i1, texts[s, 0], out, first, scale)
    return out
