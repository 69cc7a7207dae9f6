"""GPT-2 in plain NumPy, float64: the oracle every kernel test compares against.

Written the way picoGPT writes it, one short function per primitive, so that a reader can
hold each kernel beside its definition. Weights here are in the checkpoints' own layout
(Conv1D: w [in, out]).
"""

import numpy as np


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def layernorm(x, g, b, eps=1e-5):
    mean = np.mean(x, axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)           # biased, as GPT-2's
    return g * (x - mean) / np.sqrt(var + eps) + b


def linear(x, w, b):                                  # [n, in] @ [in, out] + [out]
    return x @ w + b


def attention(q, k, v):                               # [n, hd] x3 -> [n, hd]
    n = q.shape[0]
    mask = np.triu(np.full((n, n), -np.inf), k=1)     # -inf above the diagonal
    return softmax(q @ k.T / np.sqrt(q.shape[-1]) + mask) @ v


def causal_self_attention(qkv, n_head):               # [n, 3d] -> [n, d]
    q, k, v = np.split(qkv, 3, axis=-1)
    heads = zip(*(np.split(m, n_head, axis=-1) for m in (q, k, v)))
    return np.hstack([attention(qh, kh, vh) for qh, kh, vh in heads])


def block(x, t, i, n_head, eps):                      # t: tensors by checkpoint name
    p = f"h.{i}."
    a = layernorm(x, t[p + "ln_1.weight"], t[p + "ln_1.bias"], eps)
    a = linear(a, t[p + "attn.c_attn.weight"], t[p + "attn.c_attn.bias"])
    a = linear(causal_self_attention(a, n_head), t[p + "attn.c_proj.weight"], t[p + "attn.c_proj.bias"])
    x = x + a
    m = layernorm(x, t[p + "ln_2.weight"], t[p + "ln_2.bias"], eps)
    m = linear(gelu(linear(m, t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"])),
               t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"])
    return x + m


def gpt2_logits(ids, t, n_layer, n_head, eps=1e-5):   # [n] -> [n, vocab]
    t = {name: np.asarray(value, dtype=np.float64) for name, value in t.items()}
    x = t["wte.weight"][ids] + t["wpe.weight"][np.arange(len(ids))]
    for i in range(n_layer):
        x = block(x, t, i, n_head, eps)
    x = layernorm(x, t["ln_f.weight"], t["ln_f.bias"], eps)
    return x @ t["wte.weight"].T
