"""Choosing the next token from the last position's logits.

In the order transformers applies them:
1. repetition penalty (CTRL, Keskar et al. 2019): a logit of a token already in the context is
   divided by the penalty if positive and multiplied by it if negative;
2. temperature 0: greedy, the argmax (GPT-2's own decoding in its repository's README);
   otherwise logits / temperature;
3. top-k: only the k largest logits stay;
4. top-p (nucleus, Holtzman et al. 2019): only the smallest set of most likely tokens whose
   probability adds up to at least top_p stays;
5. one draw from softmax of what is left, with a NumPy Generator seeded by `seed`.

Probabilities here are float64: the nucleus boundary and the draw over 50257 tokens are sums
where float32 would be off by 1e-7 per term. This is one vector per token, not a hot path.
"""

from dataclasses import dataclass

import numpy as np

from gpt2numba.errors import ArgumentError


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.0          # 0 = greedy
    top_k: int = 0                    # 0 = off
    top_p: float = 1.0                # 1.0 = off
    repetition_penalty: float = 1.0   # 1.0 = off
    seed: int | None = None           # same seed, same text

    def __post_init__(self):
        if not self.temperature >= 0:
            raise ArgumentError("temperature", f"temperature must be >= 0 (0 means greedy), got "
                                               f"{self.temperature}")
        if not (isinstance(self.top_k, (int, np.integer)) and self.top_k >= 0):
            raise ArgumentError("top_k", f"top_k must be an integer >= 0 (0 means off), got "
                                         f"{self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ArgumentError("top_p", f"top_p must be in (0, 1] (1 means off), got {self.top_p}")
        if not self.repetition_penalty > 0:
            raise ArgumentError("repetition_penalty", f"repetition_penalty must be > 0 (1 means "
                                                      f"off), got {self.repetition_penalty}")


def apply_repetition_penalty(logits, context_ids, penalty):
    """logits [vocab] float32, context_ids: the ids seen so far -> penalised copy of logits."""
    if penalty == 1.0:
        return logits
    out = logits.copy()
    seen = np.unique(np.asarray(context_ids, dtype=np.int64))
    scores = out[seen]
    out[seen] = np.where(scores > 0, scores / np.float32(penalty), scores * np.float32(penalty))
    return out


def filter_top_k(logits, k):
    """Keep the k largest logits [vocab]; the others become -inf (ties at the k-th all stay)."""
    if k == 0 or k >= logits.shape[0]:
        return logits
    kth = np.partition(logits, -k)[-k]
    return np.where(logits >= kth, logits, np.float32(-np.inf))


def probabilities(logits):
    """softmax of logits [vocab] in float64 (-inf gets probability 0)."""
    e = np.exp(logits.astype(np.float64) - np.max(logits))
    return e / e.sum()


def filter_top_p(logits, p):
    """Keep the smallest set of most likely tokens with probability >= p; the rest -inf."""
    if p >= 1.0:
        return logits
    probs = probabilities(logits)
    order = np.argsort(-logits, kind="stable")
    mass_before = np.cumsum(probs[order]) - probs[order]
    drop = order[mass_before >= p]
    out = logits.copy()
    out[drop] = -np.inf
    return out


class Sampler:
    """Picks next tokens under one SamplingSettings, with its own seeded random generator."""

    def __init__(self, settings: SamplingSettings):
        self.settings = settings
        self.rng = np.random.default_rng(settings.seed)

    def __call__(self, logits, context_ids) -> int:
        """logits [vocab] float32 of the last position, context_ids the ids so far -> next id."""
        s = self.settings
        logits = apply_repetition_penalty(logits, context_ids, s.repetition_penalty)
        if s.temperature == 0:
            return int(np.argmax(logits))
        logits = (logits / np.float32(s.temperature)).astype(np.float32)
        logits = filter_top_p(filter_top_k(logits, s.top_k), s.top_p)
        cumulative = np.cumsum(probabilities(logits))
        return int(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], side="right"))
