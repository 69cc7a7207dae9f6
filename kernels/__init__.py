"""The math of GPT-2, one Numba kernel per primitive. Float32, C-contiguous; no model, no files."""

from .attention import causal_self_attention
from .embedding import embedding
from .finite import first_nonfinite
from .gelu import gelu
from .layernorm import layernorm
from .linear import linear, linear_reference
from .log_softmax import log_softmax_at
from .residual import residual
from .softmax import softmax
from .transpose import transpose_checked

__all__ = ["causal_self_attention", "embedding", "first_nonfinite", "gelu", "layernorm",
           "linear", "linear_reference", "log_softmax_at", "residual", "softmax",
           "transpose_checked"]
