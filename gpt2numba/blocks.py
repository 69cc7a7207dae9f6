"""GPT-2's layer graph, written with the kernels as its vocabulary.

    h = wte[ids] + wpe[positions]
    n_layer times:  h = h + attn(ln_1(h));  h = h + mlp(ln_2(h))
    logits = ln_f(h) @ wte.T

The rows may hold several texts packed one after another: `positions` restarts at 0 where a
text begins, and attention keeps each text to its own tokens. Every other layer works row by
row, so a packed forward computes what each text's own forward would.

`params` holds the checkpoint's tensors as nested records named like the checkpoint
(weights.layout.records): params.h[i].attn.c_attn.weight is "h.{i}.attn.c_attn.weight". One
difference of layout: the checkpoints store each projection as OpenAI's Conv1D, weight
[in, out]; here every projection weight is packed once at load (see
params.params_from_tensors): groups of 48 of its columns, each contiguous over all of `in`,
which is how `projection` reads them. The head is `linear` of wte [vocab, n_embd] as it is.
Scoring needs one number of each row's logits, its target's log-probability: it takes
`transformer`'s output to kernels.head_log_softmax_at instead, which never holds the logits.
"""

import numpy as np

from gpt2numba.kernels import (
    causal_self_attention,
    embedding,
    gelu,
    layernorm,
    linear,
    projection,
    residual,
)
from gpt2numba.kernels.linear import NO_BIAS

# The kernels `transformer` calls, and `gpt2`, in the order they first call them: what must be
# compiled (or found in Numba's cache) before the first forward.
TRANSFORMER_KERNELS = (embedding, layernorm, projection, causal_self_attention, residual, gelu)
FORWARD_KERNELS = (*TRANSFORMER_KERNELS, linear)


def packed(id_lists):
    """Several texts' token ids [n_i] joined into one stream of rows: (ids [N] int64,
    positions [N] int64, each token's position in its own text), N = sum of n_i."""
    ids = np.concatenate([np.asarray(one, dtype=np.int64) for one in id_lists])
    positions = np.concatenate([np.arange(len(one)) for one in id_lists])
    return ids, positions


def layer_norm(x, p, eps):                                   # p: ln_1, ln_2 or ln_f
    """x [n, n_embd] float32, normalised per row with p.weight and p.bias."""
    return layernorm(x, p.weight, p.bias, eps)               # [n, n_embd] -> [n, n_embd]


def attention(x, positions, p, n_head, first):               # p: a block's attn
    """Causal multi-head self-attention of x [n, n_embd] float32 (positions [n] int64) at rows
    first..n-1 -> [m, n_embd] float32, m = n - first."""
    qkv = projection(x, p.c_attn.weight, p.c_attn.bias)      # [n, n_embd] -> [n, 3 n_embd]
    heads = causal_self_attention(qkv, positions, n_head, first)   # -> [m, n_embd]
    return projection(heads, p.c_proj.weight, p.c_proj.bias)  # [m, n_embd] -> [m, n_embd]


def mlp(x, p):                                               # p: a block's mlp
    """The feed-forward layer: x [n, n_embd] float32 -> [n, n_embd] float32."""
    a = gelu(projection(x, p.c_fc.weight, p.c_fc.bias))      # [n, n_embd] -> [n, 4 n_embd]
    return projection(a, p.c_proj.weight, p.c_proj.bias)     # [n, 4 n_embd] -> [n, n_embd]


def block(h, positions, p, n_head, eps, first=0):            # p: params.h[i]
    """One transformer block on the residual stream h [n, n_embd] float32 (positions [n]
    int64) -> the stream at rows first..n-1, [n - first, n_embd] float32 (every row by
    default)."""
    h = residual(h[first:], attention(layer_norm(h, p.ln_1, eps), positions, p.attn, n_head,
                                      first))
    h = residual(h, mlp(layer_norm(h, p.ln_2, eps), p.mlp))
    return h


def transformer(ids, positions, params, n_head, eps, head_from=0, head_rows=None):
    """ids [n] int64 at positions [n] int64 (0..n-1 for one text; see the module docstring)
    -> the final hidden states, ln_f's output [n - head_from, n_embd] float32, of rows
    head_from..n-1; with head_rows (int64 [k], indices into those rows) only theirs,
    [k, n_embd]. What the head turns into logits (`gpt2`), or scoring into log-probabilities
    without them (head_log_softmax_at).

    Every position goes through every block but the last: a position's k and v are read by
    all the positions after it. The last block and the head (ln_f and the vocabulary
    projection, a quarter of a forward at 1024 tokens) compute only the positions asked for:
    generation needs the last one, scoring the ones its window scores. Packed generation
    needs each text's last row: the head alone is cut to those (head_rows).
    """
    h = embedding(params.wte.weight, params.wpe.weight, ids, positions)   # [n, n_embd]
    *first_blocks, last_block = params.h
    for p in first_blocks:
        h = block(h, positions, p, n_head, eps)               # [n, n_embd] -> [n, n_embd]
    h = block(h, positions, last_block, n_head, eps, head_from)   # [m, n_embd], m = n - head_from
    if head_rows is not None:
        h = h[head_rows]                                      # [m, n_embd] -> [k, n_embd]
    return layer_norm(h, params.ln_f, eps)                    # [m, n_embd]


def gpt2(ids, positions, params, n_head, eps, head_from=0, head_rows=None):
    """The logits [n - head_from, vocab] float32 (or [k, vocab] with head_rows) of the rows
    `transformer` gives for the same arguments: the head, tied to the token embedding."""
    h = transformer(ids, positions, params, n_head, eps, head_from, head_rows)
    return linear(h, params.wte.weight, NO_BIAS)              # [m, n_embd] -> [m, vocab], no bias
