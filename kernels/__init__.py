"""The math of GPT-2, one Numba kernel per primitive. Float32, C-contiguous; no model, no files."""

from .attention import causal_self_attention
from .cross_entropy import cross_entropy
from .embedding import embedding
from .entropy import entropy
from .finite import first_nonfinite
from .gelu import gelu
from .head_log_softmax import head_log_softmax_at
from .kl_divergence import kl_divergence
from .layernorm import layernorm
from .linear import linear, linear_reference
from .log_mass import log_mass
from .log_softmax import log_softmax_at
from .pack import pack_checked
from .projection import projection
from .residual import residual
from .softmax import softmax
from .token_rank import token_rank
from .top_k import top_k

__all__ = ["causal_self_attention", "cross_entropy", "embedding", "entropy", "first_nonfinite",
           "gelu", "head_log_softmax_at", "kl_divergence", "layernorm", "linear",
           "linear_reference", "log_mass", "log_softmax_at", "pack_checked", "projection",
           "residual", "softmax", "token_rank", "top_k"]
