"""Word surprisal: the log-probability of each word of a text, with the end-of-word correction
of Pimentel and Meister, "How to Compute the Probability of a Word" (EMNLP 2024).

Words are the text's whitespace-separated units, punctuation attached as written ("Hello,"
is one word). GPT-2's tokens carry the whitespace *before* a word (" world"), never after
one, so a word's tokens do not say that it ends: " cat" is also how " cats" and " catalogue"
begin. The word ends where it does exactly when the next token begins a new word, which here
means a token whose first character is whitespace, or <|endoftext|> (the end of the text).
A punctuation token without a leading space continues the word, as the words are defined.
With B(p) = the probability, given tokens 0..p, that token p + 1 begins a word (summed over
every such token of the vocabulary: kernels/log_mass.py), a word w spanning tokens s..e:

    log p(w | the words before) = sum_{t=s..e} log p(token t | tokens < t)
                                  + log B(e) - log B(e')

where e' is the last token of the word before (no such term for the first word: nothing had
to end there). The first term alone (`plain_sum`) is what most tools report; it counts the
probability of every longer word that begins the same way. The ratio is the paper's
correction for leading-space ("beginning-of-word") tokenizers. B(e) of the text's last word
needs the prediction after the text's last token, which plain scoring does not compute: the
details pass does (score_details.py).

A word's span runs from the token after the previous word's last one, so whitespace-only
tokens between words (a blank line, a double space) belong to the word after them; whitespace
after the last word belongs to none. Token 0 has no context and is not scored: the first word
has no log-probability (NaN) when it holds token 0, and is scored given token 0 when token 0
is whitespace or <|endoftext|> (GPT2.score_ids([eos_id, *ids], details=True) scores every
word). A whitespace character split across two tokens' bytes (rare: multi-byte spaces) is not
seen as one: words and B are defined on the same token-level test, so they stay consistent.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Word:
    """One word of a scored text."""

    text: str            # the word as written, punctuation attached
    logprob: float       # log p(word | words before), end-of-word corrected, nats; NaN: see above
    plain_sum: float     # sum of its tokens' log-probabilities, nats; NaN likewise
    tokens: tuple        # (start, end): it spans token positions start..end-1 of the text


@functools.lru_cache(maxsize=4)
def vocabulary_words(tokenizer):
    """(bytes of each token id, with b"" for <|endoftext|>; begins_word [vocab] bool: whether
    the token begins a new word, i.e. starts with a whitespace character or is <|endoftext|>)."""
    token_bytes = [tokenizer.decode_bytes([i]) for i in range(tokenizer.vocab_size)]
    token_bytes[tokenizer.eos_id] = b""
    begins_word = np.array([_starts_with_space(data) for data in token_bytes])
    begins_word[tokenizer.eos_id] = True
    return tuple(token_bytes), begins_word


def _starts_with_space(data) -> bool:
    """Whether bytes begin with a whole UTF-8 character that is whitespace (a byte that does not
    begin a whole character decodes to U+FFFD, which is not)."""
    return data.decode("utf-8", errors="replace")[:1].isspace()


def _has_word_characters(data) -> bool:
    return not data.decode("utf-8", errors="replace").isspace() and data != b""


def word_spans(token_bytes, begins_word) -> list[tuple[int, int]]:
    """(start, end) of each word over a text's tokens: token_bytes [N] (b"" for <|endoftext|>),
    begins_word [N] bool. A word ends before the first token that begins a word after it has
    word characters; whitespace-only tokens join the word after them; a whitespace-only token 0
    is context and joins none."""
    spans = []
    start, in_word = 0, False
    for position, data in enumerate(token_bytes):
        if begins_word[position] and in_word:
            spans.append((start, position))
            start, in_word = position, False
        if _has_word_characters(data):
            in_word = True
        elif position == 0:
            start = 1
    if in_word:
        spans.append((start, len(token_bytes)))
    return spans


def words_of(token_logprobs, details) -> list[Word]:
    """The words of a text scored with details: token_logprobs [N - 1] float64 (log p of tokens
    1..N-1), details a ScoreDetails (its token_bytes, begins_word and word_end_logprobs [N])."""
    ends_here = details.word_end_logprobs     # [N]: log B(p)
    words = []
    ended_before = 0.0   # log B(e') of the word before; none before the first
    for start, end in word_spans(details.token_bytes, details.begins_word):
        text = b"".join(details.token_bytes[start:end]).decode("utf-8", errors="replace")
        if start == 0:   # holds token 0, which has no context
            plain = logprob = math.nan
        else:
            plain = float(np.sum(token_logprobs[start - 1:end - 1]))
            logprob = plain + float(ends_here[end - 1]) - ended_before
        words.append(Word(text.strip(), logprob, plain, (start, end)))
        ended_before = float(ends_here[end - 1])
    return words
