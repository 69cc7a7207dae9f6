"""The math of GPT-2, one Numba kernel per primitive. Float32, C-contiguous; no model, no files."""

from kernels.attention import causal_self_attention
from kernels.embedding import embedding
from kernels.gelu import gelu
from kernels.layernorm import layernorm
from kernels.linear import linear, linear_reference
from kernels.residual import residual
from kernels.softmax import softmax

__all__ = ["causal_self_attention", "embedding", "gelu", "layernorm", "linear",
           "linear_reference", "residual", "softmax"]
