"""Sampling under every accepted setting: never an id outside the vocabulary, never a token from
NaN or inf logits, greedy in the limit of tiny temperatures, extreme penalties without overflow,
and SamplingSettings that take NumPy numbers but not bools where a count is meant."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gpt2numba.sampling import NonFiniteLogitsError, Sampler, SamplingSettings

FLOAT32_MAX = float(np.finfo(np.float32).max)
TINY_TEMPERATURES = [1e-38, 5e-324, 1e-300]
EXTREME_PENALTIES = [5e-324, 1e-300, 1e-45, 1e-10, 1e10, 1e38, 1e300, 1.7e308]


def realistic_logits(vocab=50257, seed=0):
    return (np.random.default_rng(seed).standard_normal(vocab) * 5).astype(np.float32)


def penalised_float64(logits, context, penalty):
    """The repetition penalty written plainly in float64; +-inf where float64 overflows."""
    out = logits.astype(np.float64)
    with np.errstate(over="ignore"):
        for token in set(context):
            out[token] = out[token] / penalty if out[token] > 0 else out[token] * penalty
    return out


temperatures = st.one_of(st.sampled_from([0.0, *TINY_TEMPERATURES, 1.0, 1e38, 1.7e308]),
                         st.floats(min_value=0, max_value=1e300))
penalties = st.one_of(st.sampled_from([1.0, *EXTREME_PENALTIES]),
                      st.floats(min_value=5e-324, max_value=1.7e308))
float32_logits = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(data=st.data(),
       logits=arrays(np.float32, st.integers(1, 300), elements=float32_logits),
       temperature=temperatures, penalty=penalties,
       top_p=st.floats(min_value=0, max_value=1, exclude_min=True),
       seed=st.integers(0, 2**64))
def test_the_id_is_always_in_the_vocabulary(data, logits, temperature, penalty, top_p, seed):
    vocab = logits.size
    top_k = data.draw(st.integers(0, vocab + 3))
    context = data.draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=20))
    sampler = Sampler(SamplingSettings(temperature, top_k, top_p, penalty, seed))
    for _ in range(3):
        token = sampler(logits, context)
        assert type(token) is int and 0 <= token < vocab


@pytest.mark.parametrize("temperature", TINY_TEMPERATURES)
@pytest.mark.parametrize("options", [{}, {"top_k": 50}, {"top_p": 0.9}])
def test_tiny_temperatures_are_greedy(temperature, options):
    for seed in range(5):
        logits = realistic_logits(seed=seed)
        sampler = Sampler(SamplingSettings(temperature=temperature, seed=seed, **options))
        assert sampler(logits, [1, 2, 3]) == int(np.argmax(logits))


@pytest.mark.parametrize("penalty", EXTREME_PENALTIES)
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_extreme_repetition_penalties(penalty, temperature):
    """Against the float64 penalty written here. Where it stays finite and one logit dominates
    by far (or greedy), that one is chosen; where it overflows, a +inf token (if any) wins and
    a -inf one never does."""
    logits = realistic_logits(vocab=1000, seed=3)
    context = [int(i) for i in np.argsort(-logits)[:5]] + [int(np.argmin(logits))]
    penalised = penalised_float64(logits, context, penalty)
    sampler = Sampler(SamplingSettings(temperature=temperature, repetition_penalty=penalty,
                                       seed=0))
    tokens = {sampler(logits, context) for _ in range(50)}
    assert all(0 <= t < 1000 for t in tokens)
    if np.isfinite(penalised).all():
        first, second = np.sort(penalised)[-1], np.sort(penalised)[-2]
        if temperature == 0 or first - second > 50 * temperature:  # others have p < e^-50
            assert tokens == {int(np.argmax(penalised))}
    elif np.isposinf(penalised).any():
        assert tokens <= set(np.flatnonzero(np.isposinf(penalised)))
    else:
        assert not tokens & set(np.flatnonzero(np.isneginf(penalised)))


def test_a_tiny_penalty_makes_the_best_seen_token_win():
    logits = realistic_logits(seed=4)
    context = [10, 20, 30, 40]
    expected = max((t for t in context if logits[t] > 0), key=lambda t: logits[t])
    sampler = Sampler(SamplingSettings(temperature=1.0, repetition_penalty=1e-45, seed=0))
    assert {sampler(logits, context) for _ in range(20)} == {expected}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_non_finite_logits_are_an_error_never_a_token(bad, temperature):
    logits = realistic_logits(seed=5)
    logits[1234] = bad
    sampler = Sampler(SamplingSettings(temperature=temperature, seed=0))
    with pytest.raises(NonFiniteLogitsError, match="logit of token 1234") as error:
        sampler(logits, [1])
    assert "\n" not in str(error.value)
    assert isinstance(error.value, ArithmeticError)


def test_numpy_integers_are_counts():
    s = SamplingSettings(temperature=np.float32(0.5), top_k=np.int64(40), top_p=np.float64(0.9),
                         repetition_penalty=np.float16(1.5), seed=np.uint64(2**63))
    assert (s.top_k, s.seed) == (40, 2**63) and type(s.top_k) is int and type(s.seed) is int
    assert type(s.temperature) is float and s.temperature == 0.5


@pytest.mark.parametrize("argument,value", [
    ("top_k", True), ("top_k", np.bool_(True)), ("seed", True), ("seed", False), ("seed", -1),
    ("top_k", 2.0), ("seed", 1.5), ("temperature", math.inf), ("temperature", math.nan),
    ("temperature", "1"), ("temperature", 10**400), ("repetition_penalty", math.inf),
    ("repetition_penalty", 0.0), ("repetition_penalty", 10**400), ("top_p", "0.5"),
    ("top_p", math.nan), ("temperature", True),
], ids=lambda value: repr(value)[:12])
def test_bad_settings_name_the_argument(argument, value):
    with pytest.raises(ValueError) as error:
        SamplingSettings(**{argument: value})
    assert str(error.value).startswith(f"{argument} must be")
