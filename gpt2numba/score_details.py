"""Scoring with details: for every scored token its rank among the model's predictions, the
entropy of the prediction and the k likeliest alternatives (GLTR's view of a text), and for
every position the probability that the next token begins a word (word surprisal: words.py).

The windows are those of plain scoring (score.py) over the text and one more "token" after
it: every scored token gets exactly the context it gets from `score`, and the prediction after
the text's last token, which the last word's end-of-word correction needs, comes from the last
window when it has room, else from one more window. One window's logits are alive at a time,
and every row is reduced at once to a few numbers (k of them for top-k), so the memory stays
that of one window, plus O(k) per token of the text for the results.
"""

from dataclasses import dataclass, replace

import numpy as np

from gpt2numba import runtime
from gpt2numba.errors import ArgumentError, is_count
from gpt2numba.kernels import entropy, log_mass, log_softmax_at, token_rank, top_k
from gpt2numba.score import Score, check_stride, ids_to_score, scored_bytes, windows
from gpt2numba.words import vocabulary_words

MOST_TOP_K = 20
DETAIL_KERNELS = (log_softmax_at, token_rank, entropy, top_k, log_mass)


@dataclass(frozen=True, eq=False)
class ScoreDetails:
    """What a Score made with details=True holds besides the log-probabilities; arrays over the
    scored tokens 1..N-1 of a text of N tokens, unless said."""

    ranks: np.ndarray              # [N - 1] int64: 1 + how many tokens had a higher logit
    entropies: np.ndarray          # [N - 1] float64: entropy of the prediction, nats
    top_ids: np.ndarray            # [N - 1, k] int64: the k likeliest tokens, best first
    top_logprobs: np.ndarray       # [N - 1, k] float64: their log-probabilities
    word_end_logprobs: np.ndarray  # [N] float64: log p(token p + 1 begins a word | tokens <= p)
    token_bytes: tuple             # [N] bytes of each token of the text (b"" for <|endoftext|>)
    begins_word: np.ndarray        # [N] bool: the token begins a word (words.py)


def check_top_k(top_k) -> int:
    """top_k as an int, or ArgumentError outside 0..MOST_TOP_K."""
    if not (is_count(top_k) and 0 <= top_k <= MOST_TOP_K):
        raise ArgumentError("top_k", f"top_k must be an integer in 0..{MOST_TOP_K}, got {top_k!r}")
    return int(top_k)


def score_with_details(model, ids, stride=None, top_k=0, progress=None, argument="ids") -> Score:
    """The Score of ids [N] by `model` (a GPT2) with its ScoreDetails; the arguments as for
    GPT2.score_ids, top_k in 0..MOST_TOP_K (ArgumentError naming it otherwise)."""
    config = model.config
    stride = check_stride(stride, config.n_positions)
    k = check_top_k(top_k)
    ids = ids_to_score(ids, config.vocab_size, argument)
    vocabulary_bytes, begins_word = vocabulary_words(model.tokenizer)
    n = ids.size
    token_logprobs = np.empty(n - 1, dtype=np.float64)
    ranks = np.empty(n - 1, dtype=np.int64)
    entropies = np.empty(n - 1, dtype=np.float64)
    top_ids = np.empty((n - 1, k), dtype=np.int64)
    top_logprobs = np.empty((n - 1, k), dtype=np.float64)
    word_end_logprobs = np.empty(n, dtype=np.float64)
    for begin, end, first in windows(n + 1, config.n_positions, stride):
        targets = ids[begin + first + 1:end + 1]    # the window reaching the end has one fewer
        scored = slice(begin + first, begin + first + targets.size)
        (token_logprobs[scored], ranks[scored], entropies[scored], top_ids[scored],
         top_logprobs[scored], word_end_logprobs[begin + first:end]) = _window(
            model, ids[begin:end], first, targets, k, begins_word)
        if progress is not None:
            progress(min(end, n - 1), n - 1)
    details = ScoreDetails(ranks, entropies, top_ids, top_logprobs, word_end_logprobs,
                           tuple(vocabulary_bytes[i] for i in ids.tolist()), begins_word[ids])
    return replace(Score.from_logprobs(token_logprobs),
                   scored_bytes=scored_bytes(model.tokenizer, ids), details=details)


def _window(model, ids, first, targets, k, begins_word):
    """One window's rows first..n-1 of ids [n], reduced: (log p, rank, entropy, top-k ids and
    log p of each row with a target (targets [m], m = n - first or one fewer), and log p that
    the next token begins a word, of every row)."""
    logits = model.logits(ids, first)                 # [n - first, vocab] float32
    predicted = logits[:targets.size]                 # [m, vocab]: the rows with a target
    with runtime.running(model.threads, DETAIL_KERNELS):
        best = top_k(predicted, k) if k else (np.empty((targets.size, 0), np.int64),
                                              np.empty((targets.size, 0), np.float64))
        return (log_softmax_at(predicted, targets), token_rank(predicted, targets),
                entropy(predicted), *best, log_mass(logits, begins_word))
