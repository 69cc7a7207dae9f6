"""Sampling: determinism, its limits (top_k=1, tiny top_p = greedy), the distribution it draws
from, and the logit processors against transformers' own implementations."""

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from gpt2numba.sampling import (
    Sampler,
    SamplingSettings,
    apply_repetition_penalty,
    filter_top_k,
    filter_top_p,
)

PROMPT = "Once upon a time"


def test_same_seed_same_text(tiny_model):
    a = tiny_model.generate(PROMPT, 20, temperature=1.0, seed=7)
    b = tiny_model.generate(PROMPT, 20, temperature=1.0, seed=7)
    c = tiny_model.generate(PROMPT, 20, temperature=1.0, seed=8)
    assert a == b and a != c


def test_top_k_1_and_tiny_top_p_are_greedy(tiny_model):
    greedy = tiny_model.generate(PROMPT, 20)
    assert tiny_model.generate(PROMPT, 20, temperature=1.3, top_k=1, seed=1) == greedy
    assert tiny_model.generate(PROMPT, 20, temperature=1.3, top_p=1e-9, seed=2) == greedy


def test_first_token_follows_softmax_of_the_logits(tiny_model):
    """Chi-square over 20000 draws at temperature 1: the 15 likeliest tokens and the rest."""
    ids = tiny_model.tokenizer.encode(PROMPT)
    logits = tiny_model.next_token_logits(ids)
    probs = np.exp(logits.astype(np.float64) - logits.max())
    probs /= probs.sum()
    top = np.argsort(-probs)[:15]
    sampler = Sampler(SamplingSettings(temperature=1.0, seed=1234))
    draws = np.array([sampler(logits, ids) for _ in range(20000)])
    observed = np.array([np.sum(draws == t) for t in top] + [np.sum(~np.isin(draws, top))])
    expected = 20000 * np.append(probs[top], 1 - probs[top].sum())
    assert expected.min() > 5, "bins too small for a chi-square test"
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert chi2 < 37.7, f"chi-square {chi2:.1f} with 15 degrees of freedom (p < 0.001)"


def test_temperature_sharpens_the_distribution(tiny_model):
    ids = tiny_model.tokenizer.encode(PROMPT)
    logits = tiny_model.next_token_logits(ids)
    top = int(np.argmax(logits))
    cold = Sampler(SamplingSettings(temperature=0.05, seed=0))
    hot = Sampler(SamplingSettings(temperature=5.0, seed=0))
    cold_hits = sum(cold(logits, ids) == top for _ in range(200))
    assert cold_hits > sum(hot(logits, ids) == top for _ in range(200))


@pytest.mark.parametrize("penalty", [1.3, 0.7, 2.0])
def test_repetition_penalty_is_transformers(penalty):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal(50257).astype(np.float32) * 5
    context = [5, 17, 17, 300, 50256, 12]
    expected = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor([context]),
                                                         torch.tensor(logits[None]))[0].numpy()
    # transformers divides in float32 by float32(penalty), we in float64 by the penalty itself
    # (no overflow at extreme penalties): equal to within float32 rounding, 2^-23.
    np.testing.assert_allclose(apply_repetition_penalty(logits, context, penalty), expected,
                               rtol=2**-23, atol=0)


@pytest.mark.parametrize("k", [1, 5, 50, 50256])
def test_top_k_keeps_what_transformers_keeps(k):
    logits = np.random.default_rng(k).standard_normal(50257).astype(np.float32)
    expected = TopKLogitsWarper(k)(None, torch.tensor(logits[None]))[0].numpy()
    np.testing.assert_array_equal(np.isinf(filter_top_k(logits, k)), np.isinf(expected))


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9, 0.999])
def test_top_p_keeps_the_smallest_set_with_mass_p(p):
    """The definition, in float64; and transformers' TopPLogitsWarper keeps the same set, but
    for a token whose cumulative mass is within float32 rounding (1e-6) of the threshold:
    transformers sums in float32, we sum in float64."""
    logits = np.random.default_rng(int(p * 1000)).standard_normal(50257).astype(np.float32) * 3
    kept = ~np.isinf(filter_top_p(logits, p))
    probs = np.exp(logits.astype(np.float64) - logits.max())
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")
    size = int(kept.sum())
    assert set(order[:size]) == set(np.flatnonzero(kept))         # the most likely ones
    assert probs[order[:size]].sum() >= p > probs[order[:size - 1]].sum()  # the smallest such set
    expected = ~np.isinf(TopPLogitsWarper(p)(None, torch.tensor(logits[None]))[0].numpy())
    for token in np.flatnonzero(kept != expected):
        mass_before = probs[order[:np.flatnonzero(order == token)[0]]].sum()
        assert abs(mass_before - p) < 1e-6 or abs(mass_before + probs[token] - p) < 1e-6


def test_repetition_penalty_changes_greedy_text(tiny_model):
    plain = tiny_model.generate_ids([464, 3290], 30, stop_at_eos=False)
    penalised = tiny_model.generate_ids([464, 3290], 30, repetition_penalty=5.0, stop_at_eos=False)
    assert plain != penalised
    assert len(set(penalised)) >= len(set(plain))
