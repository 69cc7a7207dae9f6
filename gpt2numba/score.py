"""Scoring a text: the log-probability of each of its tokens, and its perplexity.

The targets are tokens 1..N-1 of a text of N tokens (the first has no context). A window is a
run of at most n_positions consecutive input tokens starting at b = k * stride (k = 0, 1, ...);
its logits at position i predict token b + i + 1. Each window scores the targets no earlier
window scored, and the last window ends at the text's end. So every target is scored exactly
once, with as much context as its window gives: stride = n_positions gives disjoint windows,
smaller strides more context at more cost, and a text of at most n_positions + 1 tokens is one
forward. This is transformers' perplexity recipe, made exact.

Many short texts are scored together: the one window of each text of at most n_positions + 1
tokens is packed with the next texts' into one forward of at most n_positions rows, each text
at positions starting from 0 and attending to its own tokens only (see blocks.py). A forward
of a few hundred rows keeps the projections' tiles full where a text of 24 tokens alone would
not, and pays the Python around a forward once for many texts.
"""

from dataclasses import dataclass, field

import numpy as np

from gpt2numba.errors import ArgumentError, check_in_vocabulary, is_count


@dataclass(frozen=True, eq=False)
class Score:
    """How likely a text is: its scored tokens' log-probabilities and their sum and perplexity;
    bits per byte; with details (GPT2.score(..., details=True)) ranks, entropies, top-k and
    words (gpt2numba/score_details.py, gpt2numba/words.py)."""

    tokens: int                  # how many tokens were scored: all but the first
    nll: float                   # summed negative log-likelihood, nats
    perplexity: float            # exp(nll / tokens)
    token_logprobs: np.ndarray = field(repr=False)  # [tokens] float64: log p(token t | before t)
    scored_bytes: int | None = None   # UTF-8 bytes of the scored tokens (see scored_bytes)
    details: object = field(default=None, repr=False)  # a ScoreDetails, when asked for

    @classmethod
    def from_logprobs(cls, token_logprobs) -> "Score":
        """The Score of token_logprobs [tokens] float64 (log p of tokens 1..N-1)."""
        nll = -float(np.sum(token_logprobs))
        return cls(token_logprobs.size, nll, perplexity(nll, token_logprobs.size), token_logprobs)

    @property
    def bits_per_byte(self) -> float | None:
        """nll in bits divided by scored_bytes, the UTF-8 bytes of the scored tokens (all but
        the first; <|endoftext|> counts none): comparable across tokenizers, unlike perplexity.
        None for a Score made without its bytes; inf (or NaN for nll 0) when they are 0."""
        return None if self.scored_bytes is None else bits_per_byte(self.nll, self.scored_bytes)

    def words(self) -> list:
        """The text's words (gpt2numba.words.Word: text, logprob with the end-of-word
        correction, plain_sum of its tokens, token span), for a Score made with details=True;
        ArgumentError naming "details" otherwise."""
        from gpt2numba.words import words_of

        if self.details is None:
            raise ArgumentError("details", "words() needs the end-of-word probabilities: score "
                                           "with details=True, e.g. model.score(text, "
                                           "details=True).words()")
        return words_of(self.token_logprobs, self.details)


def perplexity(nll, tokens) -> float:
    """exp(nll / tokens); inf where that passes the float64 range."""
    with np.errstate(over="ignore"):
        return float(np.exp(nll / tokens))


def bits_per_byte(nll, scored_bytes) -> float:
    """nll (nats) / (ln 2 * scored_bytes); inf (NaN for nll 0) when scored_bytes is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(nll) / (np.log(2) * scored_bytes))


def scored_bytes(tokenizer, ids) -> int:
    """UTF-8 bytes of tokens 1..N-1 of ids [N] (valid ids, checked), what bits per byte divides
    by: the text but its first token, which is not scored. <|endoftext|> counts none (it stands
    for no text). lm-evaluation-harness scores every token after an <|endoftext|> and divides by
    the whole text's bytes: score_ids([eos_id, *ids]) gives that number."""
    scored = np.asarray(ids)[1:]
    return len(tokenizer.decode_bytes(scored[scored != tokenizer.eos_id].tolist()))


def score_tokens(window_logprobs, ids, config, stride=None, progress=None, argument="ids"):
    """The Score of token ids [N], after checking `stride` and `ids` (ArgumentError naming
    "stride", or `argument` for the ids: the caller's name for what they came from); then as
    score_in_windows. config gives n_positions and vocab_size."""
    stride = check_stride(stride, config.n_positions)
    ids = ids_to_score(ids, config.vocab_size, argument)
    return score_in_windows(window_logprobs, ids, config.n_positions, stride, progress)


def check_stride(stride, n_positions) -> int:
    """The stride to use: n_positions // 2 for None; ArgumentError outside 1..n_positions."""
    if stride is None:
        return n_positions // 2
    if not (is_count(stride) and 1 <= stride <= n_positions):
        raise ArgumentError("stride", f"stride must be an integer in 1..{n_positions} "
                                      f"(n_positions), got {stride!r}")
    return int(stride)


def ids_to_score(ids, vocab_size, argument="ids") -> np.ndarray:
    """ids as a new int64 array, or ArgumentError naming `argument` if they are not token ids
    or fewer than two."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ArgumentError(argument, "ids must be a 1-D sequence of integer token ids")
    if ids.size < 2:
        what = "empty" if ids.size == 0 else "a single token"
        raise ArgumentError(argument, f"nothing to score: the text is {what}; the first token "
                                      f"has no context and is not scored, so scoring needs at "
                                      f"least 2 tokens")
    check_in_vocabulary(ids, vocab_size, argument)
    return ids.astype(np.int64)


def windows(n_tokens, n_positions, stride):
    """(begin, end, first) of each window over n_tokens ids: its input is ids[begin:end], and it
    scores its positions first..end-begin-1, whose logits predict ids[begin+first+1:end+1]."""
    scored_up_to = 0   # the last target an earlier window scored (token 0 is never a target)
    begin = 0
    while scored_up_to < n_tokens - 1:
        end = min(begin + n_positions, n_tokens - 1)
        yield begin, end, scored_up_to - begin
        scored_up_to = end
        begin += stride


def score_in_windows(window_logprobs, ids, n_positions, stride, progress=None) -> Score:
    """Score ids [N] int64 (N >= 2, checked by ids_to_score) window by window.

    window_logprobs(ids [n], first, targets [n - first]) -> float64 [n - first]: log p of each
    target under the logits of positions first..n-1 of the window (n <= n_positions), the ones
    it scores; one window's logits are alive at a time. progress(scored, total), if given, is
    called after each window with the number of tokens scored so far and in all.
    """
    token_logprobs = np.empty(ids.size - 1, dtype=np.float64)   # [t - 1]: log p(ids[t])
    for begin, end, first in windows(ids.size, n_positions, stride):
        targets = ids[begin + first + 1:end + 1]                      # [end - begin - first]
        token_logprobs[begin + first:end] = window_logprobs(ids[begin:end], first, targets)
        if progress is not None:
            progress(end, token_logprobs.size)
    return Score.from_logprobs(token_logprobs)


def score_packed(window_logprobs, packed_logprobs, texts, n_positions, stride) -> list:
    """The Score of each of `texts` (int64 id arrays of 2 ids or more, from ids_to_score), in
    order: the texts of at most n_positions + 1 ids packed into shared forwards
    (`packed_logprobs`), the longer ones window by window (`window_logprobs`, as
    score_in_windows).

    packed_logprobs(inputs, targets [n]) -> float64 [n]: log p of each target under the logits
    of every row of the forward of the id arrays `inputs` packed one after another (n rows in
    all, n <= n_positions).
    """
    scores = [None] * len(texts)
    short = [i for i, ids in enumerate(texts) if ids.size <= n_positions + 1]
    for group in packs([texts[i].size - 1 for i in short], n_positions):
        members = [texts[short[k]] for k in group]
        logprobs = packed_logprobs([ids[:-1] for ids in members],
                                   np.concatenate([ids[1:] for ids in members]))
        ends = np.cumsum([ids.size - 1 for ids in members])
        for k, text_logprobs in zip(group, np.split(logprobs, ends[:-1])):
            scores[short[k]] = Score.from_logprobs(text_logprobs)
    for i, ids in enumerate(texts):
        if scores[i] is None:
            scores[i] = score_in_windows(window_logprobs, ids, n_positions, stride)
    return scores


def packs(rows, n_positions):
    """Lists of consecutive indices of `rows` (each at most n_positions) whose rows add up to at
    most n_positions: the forwards the texts are packed into, in order."""
    group, total = [], 0
    for k, n in enumerate(rows):
        if total + n > n_positions:
            yield group
            group, total = [], 0
        group.append(k)
        total += n
    if group:
        yield group
