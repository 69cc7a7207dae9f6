"""Two models on one text: how far the second model's predictions are from the first's.

gpt2numba.compare(model_a, model_b, text) is this module's `compare` (the module is not named
compare: the package attribute would then be the module, not the function).

For every scored token of the text (the targets of score.py's windows, over the smaller
n_positions of the two models), both models predict from the same context; then:
- each model's log-likelihood and perplexity of the text;
- KL(P_A || P_B), the divergence of B's prediction from A's, per position (mean and maximum):
  llama.cpp's KL-divergence mode, A as its base;
- top-1 agreement: how often the two models' likeliest tokens are the same;
- Binoculars (Hans et al., 2024): A is the observer, B the performer. The cross-perplexity's
  logarithm is the mean over positions of the cross-entropy H(P_A, P_B) = -sum_j p_A(j) log
  p_B(j), and the score is the performer's log-perplexity divided by it,
  (nll_B / tokens) / mean H(P_A, P_B), as the authors' code computes it (its `ppl` is the
  performer's, its `x_ppl` takes softmax of the observer's logits against the performer's
  log-softmax). Their code averages over every position including the last, which predicts
  past the text; here the mean is over the scored positions, those of the perplexities.
Both models' forwards over a window run one after the other, and one window's logits are
alive per model.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from gpt2numba import runtime
from gpt2numba.errors import ArgumentError
from gpt2numba.kernels import cross_entropy, kl_divergence, log_softmax_at, top_k
from gpt2numba.score import check_stride, ids_to_score, perplexity, windows
from gpt2numba.words import vocabulary_words

COMPARE_KERNELS = (log_softmax_at, kl_divergence, cross_entropy, top_k)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Model A against model B on one text (see the module)."""

    tokens: int                  # scored tokens: all but the first
    nll_a: float                 # summed negative log-likelihood under A, nats
    nll_b: float
    perplexity_a: float
    perplexity_b: float
    kl_mean: float               # mean over positions of KL(P_A || P_B), nats
    kl_max: float
    top1_agreement: float        # share of positions where argmax P_A == argmax P_B
    log_cross_perplexity: float  # mean over positions of H(P_A, P_B), nats
    cross_perplexity: float      # exp(log_cross_perplexity)
    binoculars: float            # (nll_b / tokens) / log_cross_perplexity
    kl: np.ndarray = field(repr=False)   # [tokens] float64: KL(P_A || P_B) at each position

    def as_dict(self) -> dict:
        """The figures as plain floats and ints (no per-position array), for JSON."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "kl"}


def check_same_vocabulary(model_a, model_b):
    """ArgumentError naming "model_b" unless both models give every token id the same bytes
    and end text with the same id, so that one tokenization of the text means the same tokens
    to both."""
    size_a, size_b = model_a.config.vocab_size, model_b.config.vocab_size
    if size_a != size_b:
        differ = f"{size_a} and {size_b} tokens"
    elif (vocabulary_words(model_a.tokenizer)[0] != vocabulary_words(model_b.tokenizer)[0]
          or model_a.tokenizer.eos_id != model_b.tokenizer.eos_id):
        differ = f"{size_a} tokens each, not the same"
    else:
        return
    raise ArgumentError("model_b", f"the two models have different vocabularies ({differ}): "
                                   f"compare models that share a tokenizer, such as gpt2 and "
                                   f"distilgpt2")


def compare(model_a, model_b, text, stride=None) -> Comparison:
    """Compare two GPT2 models of the same vocabulary on `text` (a str, tokenized by A's
    tokenizer, or token ids). stride: as for GPT2.score, within the smaller n_positions.
    ArgumentError naming "model_b" (different vocabularies), "stride" or "text"."""
    check_same_vocabulary(model_a, model_b)
    n_positions = min(model_a.config.n_positions, model_b.config.n_positions)
    stride = check_stride(stride, n_positions)
    ids = model_a.tokenizer.encode(text) if isinstance(text, str) else text
    ids = ids_to_score(ids, model_a.config.vocab_size, "text")
    logprobs_a = np.empty(ids.size - 1, dtype=np.float64)
    logprobs_b = np.empty(ids.size - 1, dtype=np.float64)
    kl = np.empty(ids.size - 1, dtype=np.float64)
    cross = np.empty(ids.size - 1, dtype=np.float64)
    agree = np.empty(ids.size - 1, dtype=bool)
    for begin, end, first in windows(ids.size, n_positions, stride):
        scored = slice(begin + first, end)
        targets = ids[begin + first + 1:end + 1]
        logits_a = model_a.logits(ids[begin:end], first)     # [end - begin - first, vocab]
        logits_b = model_b.logits(ids[begin:end], first)
        with runtime.running(model_a.threads, COMPARE_KERNELS):
            logprobs_a[scored] = log_softmax_at(logits_a, targets)
            logprobs_b[scored] = log_softmax_at(logits_b, targets)
            kl[scored] = kl_divergence(logits_a, logits_b)
            cross[scored] = cross_entropy(logits_a, logits_b)
            agree[scored] = top_k(logits_a, 1)[0][:, 0] == top_k(logits_b, 1)[0][:, 0]
    return _comparison(logprobs_a, logprobs_b, kl, cross, agree)


def _comparison(logprobs_a, logprobs_b, kl, cross, agree) -> Comparison:
    tokens = logprobs_a.size
    nll_a, nll_b = -float(np.sum(logprobs_a)), -float(np.sum(logprobs_b))
    log_cross = float(np.mean(cross))
    with np.errstate(over="ignore"):
        cross_perplexity = float(np.exp(log_cross))
    binoculars = (nll_b / tokens) / log_cross if log_cross else math.inf
    return Comparison(tokens, nll_a, nll_b, perplexity(nll_a, tokens), perplexity(nll_b, tokens),
                      float(np.mean(kl)), float(np.max(kl)), float(np.mean(agree)), log_cross,
                      cross_perplexity, binoculars, kl)
