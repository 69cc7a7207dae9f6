"""GPT-2's layer graph, written with the kernels as its vocabulary.

    h = wte[ids] + wpe[positions]
    n_layer times:  h = h + attn(ln_1(h));  h = h + mlp(ln_2(h))
    logits = ln_f(h) @ wte.T

Parameter names mirror the checkpoint's (c_attn, c_proj, c_fc, ln_1, ln_2, ln_f, wte, wpe).
One difference of layout: the checkpoints store each projection as OpenAI's Conv1D, w [in, out];
here every w is [out, in], transposed once at load (see GPT2.from_pretrained), so that each
output of `linear` is a dot product of two contiguous rows. The head uses wte [vocab, n_embd]
as it is: it is already [out, in].
"""

from typing import NamedTuple

import numpy as np

from gpt2numba.kernels import causal_self_attention, embedding, gelu, layernorm, linear, residual

# The kernels `gpt2` calls, in the order it first calls them: what must be compiled (or found in
# Numba's cache) before the first forward.
FORWARD_KERNELS = (embedding, layernorm, linear, causal_self_attention, residual, gelu)


class Linear(NamedTuple):
    w: np.ndarray   # [out, in]
    b: np.ndarray   # [out]


class LayerNorm(NamedTuple):
    g: np.ndarray   # [n_embd], "weight" in the checkpoint
    b: np.ndarray   # [n_embd], "bias"


class Block(NamedTuple):
    ln_1: LayerNorm
    c_attn: Linear      # [n_embd] -> [3 n_embd]: q | k | v
    attn_proj: Linear   # attn.c_proj, [n_embd] -> [n_embd]
    ln_2: LayerNorm
    c_fc: Linear        # [n_embd] -> [4 n_embd]
    mlp_proj: Linear    # mlp.c_proj, [4 n_embd] -> [n_embd]


class Params(NamedTuple):
    wte: np.ndarray     # [vocab, n_embd] token embedding, also the head
    wpe: np.ndarray     # [n_positions, n_embd] position embedding
    blocks: list        # n_layer x Block
    ln_f: LayerNorm
    head_bias: np.ndarray  # [vocab] zeros: GPT-2's head has no bias, linear takes one


def attention(x, p: Block, n_head):
    qkv = linear(x, p.c_attn.w, p.c_attn.b)                   # [n, n_embd] -> [n, 3 n_embd]
    heads = causal_self_attention(qkv, n_head)                # [n, 3 n_embd] -> [n, n_embd]
    return linear(heads, p.attn_proj.w, p.attn_proj.b)        # [n, n_embd] -> [n, n_embd]


def mlp(x, p: Block):
    a = gelu(linear(x, p.c_fc.w, p.c_fc.b))                   # [n, n_embd] -> [n, 4 n_embd]
    return linear(a, p.mlp_proj.w, p.mlp_proj.b)              # [n, 4 n_embd] -> [n, n_embd]


def transformer_block(h, p: Block, n_head, eps):
    h = residual(h, attention(layernorm(h, p.ln_1.g, p.ln_1.b, eps), p, n_head))  # [n, n_embd]
    h = residual(h, mlp(layernorm(h, p.ln_2.g, p.ln_2.b, eps), p))                # [n, n_embd]
    return h


def gpt2(ids, params: Params, n_head, eps, last_only=False):
    """ids [n] int64 -> logits [n, vocab] float32 ([1, vocab] for the last position if last_only)."""
    h = embedding(params.wte, params.wpe, ids)                # [n] -> [n, n_embd]
    for block in params.blocks:
        h = transformer_block(h, block, n_head, eps)          # [n, n_embd] -> [n, n_embd]
    if last_only:
        h = h[-1:]                                            # [1, n_embd]: generation needs no more
    h = layernorm(h, params.ln_f.g, params.ln_f.b, eps)       # [n, n_embd]
    return linear(h, params.wte, params.head_bias)            # [n, n_embd] -> [n, vocab]
