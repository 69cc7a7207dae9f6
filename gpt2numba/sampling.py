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

Everything after the logits is float64: the nucleus boundary and the draw over 50257 tokens are
sums where float32 would be off by 1e-7 per term, and float32 overflows where the settings are
extreme (a logit of 30 divided by temperature 1e-38 or by a penalty of 1e-45). The temperature
divides differences from the largest logit, (x - max) / T, which are <= 0: a tiny temperature
sends every other token to -inf (probability 0) and the largest to exactly 0, so it is greedy
in the limit instead of inf / inf = NaN. NaN or inf logits (weights or a config that
overflow float32) raise NonFiniteLogitsError: no token is chosen from them. This is one
vector per token, not a hot path.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np

from gpt2numba.errors import ArgumentError, is_count

_FLOAT64_MAX = np.finfo(np.float64).max


class NonFiniteLogitsError(FloatingPointError):
    """The model produced NaN or infinite logits: no token can be chosen from them."""


@dataclass(frozen=True)
class SamplingSettings:
    """How the next token is chosen; checked when made (ArgumentError naming the field)."""

    temperature: float = 0.0          # 0 = greedy
    top_k: int = 0                    # 0 = off
    top_p: float = 1.0                # 1.0 = off
    repetition_penalty: float = 1.0   # 1.0 = off
    seed: int | None = None           # same seed, same text

    def __post_init__(self):
        """Check every field and store it as a Python float or int (NumPy scalars accepted,
        bools refused); an ArgumentError (a ValueError) names the argument."""
        temperature = _real(self.temperature)
        if temperature is None or not (math.isfinite(temperature) and temperature >= 0):
            raise ArgumentError("temperature", f"temperature must be a finite number >= 0 (0 "
                                               f"means greedy), got {self.temperature!r}")
        if not (is_count(self.top_k) and self.top_k >= 0):
            raise ArgumentError("top_k", f"top_k must be an integer >= 0 (0 means off), got "
                                         f"{self.top_k!r}")
        top_p = _real(self.top_p)
        if top_p is None or not 0 < top_p <= 1:
            raise ArgumentError("top_p", f"top_p must be a number in (0, 1] (1 means off), got "
                                         f"{self.top_p!r}")
        penalty = _real(self.repetition_penalty)
        if penalty is None or not (math.isfinite(penalty) and penalty > 0):
            raise ArgumentError("repetition_penalty", f"repetition_penalty must be a finite "
                                                      f"number > 0 (1 means off), got "
                                                      f"{self.repetition_penalty!r}")
        if not (self.seed is None or (is_count(self.seed) and self.seed >= 0)):
            raise ArgumentError("seed", f"seed must be an integer >= 0 or None, got {self.seed!r}")
        for name, value in (("temperature", temperature), ("top_k", int(self.top_k)),
                            ("top_p", top_p), ("repetition_penalty", penalty),
                            ("seed", None if self.seed is None else int(self.seed))):
            object.__setattr__(self, name, value)


def _real(value):
    """value as a float (+-inf beyond float range), or None if it is not a real number."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return None
    try:
        return float(value)
    except OverflowError:  # an int of more than 308 digits
        return math.inf if value > 0 else -math.inf


def apply_repetition_penalty(logits, context_ids, penalty):
    """logits [vocab] float32, context_ids: the ids seen so far -> float64 [vocab], penalised.

    In float64 with the penalty as given, so no finite logit overflows for penalties from
    1e-269 to 1e269; beyond, a penalised logit saturates at the largest float64 (+-1.8e308).
    """
    out = logits.astype(np.float64)
    if penalty == 1.0:
        return out
    seen = np.unique(np.asarray(context_ids, dtype=np.int64))
    scores = out[seen]
    with np.errstate(over="ignore", under="ignore"):
        penalised = np.where(scores > 0, scores / penalty, scores * penalty)
    out[seen] = np.clip(penalised, -_FLOAT64_MAX, _FLOAT64_MAX)
    return out


def filter_top_k(logits, k):
    """Keep the k largest logits [vocab]; the others become -inf (ties at the k-th all stay)."""
    if k == 0 or k >= logits.shape[0]:
        return logits
    kth = np.partition(logits, -int(k))[-int(k)]
    return np.where(logits >= kth, logits, -np.inf)


def scale_by_temperature(logits, temperature):
    """float64 logits [vocab], finite or -inf -> (logits - max) / temperature [vocab].

    The largest logit (each of them if tied) becomes exactly 0 and the others stay <= 0, so
    the softmax that follows never overflows; -inf stays -inf.
    """
    with np.errstate(over="ignore", under="ignore"):
        return (logits - np.max(logits)) / temperature


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


def check_logits_finite(logits):
    """NonFiniteLogitsError naming the first NaN or inf in logits [vocab]."""
    bad = np.flatnonzero(~np.isfinite(logits))
    if bad.size:
        raise NonFiniteLogitsError(
            f"the model computed {logits[bad[0]]} as the logit of token {int(bad[0])} "
            f"({bad.size} of {logits.size} logits are not finite), so no next token can be "
            f"chosen; the weights or config.json overflow float32: check the checkpoint")


class Sampler:
    """Picks next tokens under one SamplingSettings, with its own seeded random generator."""

    def __init__(self, settings: SamplingSettings):
        self.settings = settings
        self.rng = np.random.default_rng(settings.seed)

    def __call__(self, logits, context_ids) -> int:
        """logits [vocab] float32 of the last position, context_ids the ids so far -> next id,
        in 0..vocab-1. Raises NonFiniteLogitsError if any logit is NaN or infinite."""
        s = self.settings
        check_logits_finite(logits)
        logits = apply_repetition_penalty(logits, context_ids, s.repetition_penalty)
        if s.temperature == 0:
            return int(np.argmax(logits))
        # top-k before the division: T > 0 keeps the order, so the same tokens stay
        logits = scale_by_temperature(filter_top_k(logits, s.top_k), s.temperature)
        logits = filter_top_p(logits, s.top_p)
        cumulative = np.cumsum(np.exp(logits))  # the largest is exp(0) = 1: the sum is >= 1
        cumulative /= cumulative[-1]            # ends at exactly 1.0 > any draw in [0, 1)
        # side="right": the first token whose cumulative mass exceeds the draw, which has
        # probability > 0 (a token of probability 0 repeats its predecessor's mass).
        return int(np.searchsorted(cumulative, self.rng.random(), side="right"))
