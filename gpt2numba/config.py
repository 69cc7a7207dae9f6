"""GPT2Config: the sizes that define a GPT-2, from a checkpoint's config.json."""

from dataclasses import dataclass

from gpt2numba.weights import read_config


@dataclass(frozen=True)
class GPT2Config:
    n_layer: int                 # transformer blocks: 12 (gpt2) ... 48 (gpt2-xl)
    n_head: int                  # attention heads per block; head_dim = n_embd / n_head
    n_embd: int                  # width of the residual stream: 768 ... 1600
    n_positions: int             # context length: 1024, the most tokens one forward can see
    vocab_size: int              # 50257 byte-level BPE tokens, the last is <|endoftext|>
    layer_norm_epsilon: float    # 1e-5

    @classmethod
    def from_folder(cls, folder) -> "GPT2Config":
        """Read and validate `folder`/config.json (weights.read_config); WeightsError if not GPT-2."""
        return cls(**read_config(folder))
