"""GPT-2 in plain NumPy, float64: the oracle every kernel test and the whole-model test compare
against.

Written the way picoGPT writes it, one short function per primitive, so that a reader can
hold each kernel beside its definition. Weights here are in the checkpoints' own layout
(Conv1D: w [in, out]), as the records of weights.layout, named like the checkpoint.
"""

import numpy as np

from gpt2numba.weights.layout import records, tensor_shapes


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(x):                                   # [n, vocab] -> [n, vocab], row by row
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def layernorm(x, g, b, eps=1e-5):
    mean = np.mean(x, axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)           # biased, as GPT-2's
    return g * (x - mean) / np.sqrt(var + eps) + b


def linear(x, w, b=0.0):                              # [n, in] @ [in, out] + [out]
    return x @ w + b


def attention(q, k, v):                               # [n, hd] x3 -> [n, hd]
    n = q.shape[0]
    mask = np.triu(np.full((n, n), -np.inf), k=1)     # -inf above the diagonal
    return softmax(q @ k.T / np.sqrt(q.shape[-1]) + mask) @ v


def causal_self_attention(qkv, n_head):               # [n, 3d] -> [n, d]
    q, k, v = np.split(qkv, 3, axis=-1)
    heads = zip(*(np.split(m, n_head, axis=-1) for m in (q, k, v)))
    return np.hstack([attention(qh, kh, vh) for qh, kh, vh in heads])


def mha(x, attn, n_head):                             # [n, d] -> [n, d]
    qkv = linear(x, attn.c_attn.weight, attn.c_attn.bias)                  # [n, 3d]
    return linear(causal_self_attention(qkv, n_head), attn.c_proj.weight, attn.c_proj.bias)


def ffn(x, mlp):                                      # [n, d] -> [n, d]
    a = gelu(linear(x, mlp.c_fc.weight, mlp.c_fc.bias))                    # [n, 4d]
    return linear(a, mlp.c_proj.weight, mlp.c_proj.bias)


def block(x, p, n_head, eps):                         # p: one of params.h
    x = x + mha(layernorm(x, p.ln_1.weight, p.ln_1.bias, eps), p.attn, n_head)
    return x + ffn(layernorm(x, p.ln_2.weight, p.ln_2.bias, eps), p.mlp)


def gpt2(ids, tensors, config):                       # [n] -> [n, vocab]
    """The whole forward on checkpoint tensors (canonical names, as load_tensors gives them)."""
    p = records({name: np.asarray(tensors[name], dtype=np.float64)
                 for name in tensor_shapes(config)})
    eps = config.layer_norm_epsilon
    x = p.wte.weight[ids] + p.wpe.weight[np.arange(len(ids))]
    for layer in p.h:
        x = block(x, layer, config.n_head, eps)
    x = layernorm(x, p.ln_f.weight, p.ln_f.bias, eps)
    return x @ p.wte.weight.T                         # the head is wte, no bias
