"""Bits per byte, ranks, entropies, top-k and word surprisal against transformers.

The oracle runs GPT2LMHeadModel over the windows of the scoring recipe, written again here:
window k takes ids[b:e], b = k * stride, e = min(b + n_positions, N), and its rows from the
first one no earlier window computed predict the token after them; the windows cover rows
0..N-1, the last row being the prediction after the text (which word surprisal needs). Every
figure is computed from those logits in float64, plainly, and ours must agree within 1e-4
relative (1e-4 absolute for numbers near 0). Ranks and top-k ids are orders of float32 logits
that differ from transformers' by rounding: they must agree up to logits closer than TIE.
The checkpoint: conftest's tiny one (2 layers, n_embd 64, n_positions 128, the real
vocabulary, initializer_range 0.5).
"""

import math
import re

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from gpt2numba.errors import ArgumentError
from support import reference

RTOL = 1e-4
ATOL = 1e-4
TIE = 1e-3   # logits within this of each other may come in either order
TEXTS = [
    "Hello, world! In 1987, the naïve Zürich-based café served 3.14159 crêpes.\n\n"
    "Antidisestablishmentarianism, surprisingly, wasn't discussed: 42% said «non».",
    "\nA text that begins with a newline  has   odd spacing, and ends with one.\n",
]


@pytest.fixture(scope="module")
def oracle(tiny_checkpoint):
    return GPT2LMHeadModel.from_pretrained(tiny_checkpoint, dtype=torch.float32).eval()


def reference_rows(oracle, ids, n_positions, stride):
    """[N, vocab] float64 logits of rows 0..N-1 over the recipe's windows (see the module)."""
    n = len(ids)
    rows = np.full((n, oracle.config.vocab_size), np.nan)
    done = 0   # rows 0..done-1 are computed
    for begin in range(0, n, stride):
        end = min(begin + n_positions, n)
        with torch.no_grad():
            logits = oracle(torch.tensor([ids[begin:end]])).logits[0].double().numpy()
        rows[done:end] = logits[done - begin:]
        done = end
        if end == n:
            break
    assert not np.isnan(rows).any()
    return rows


def begins_a_word(tokenizer):
    """[vocab] bool: the token's text starts with a whitespace character, or it is the end of
    text (its bytes decoded, a partial character as U+FFFD)."""
    starts = np.array([tokenizer.decode_bytes([i]).decode("utf-8", "replace")[:1].isspace()
                       for i in range(tokenizer.vocab_size)])
    starts[tokenizer.eos_id] = True
    return starts


@pytest.fixture(scope="module")
def word_starts(tiny_model):
    return begins_a_word(tiny_model.tokenizer)


def reference_words(text, tokenizer, ids, logprobs, log_b):
    """[(word, logprob, plain_sum)] by the definition in gpt2numba/words.py, from the text's
    whitespace-separated words and the tokens' byte offsets; logprobs [N-1] of tokens 1..N-1,
    log_b [N] the log-probability that the token after row p begins a word."""
    ends = np.cumsum([len(tokenizer.decode_bytes([i])) for i in ids])   # byte end of each token
    data = text.encode("utf-8")
    words, start, before = [], 0, 0.0
    if not data[:ends[0]].strip():
        start = 1            # token 0 is whitespace only: context, part of no word
    for match in re.finditer(r"\S+", text):
        last_byte = len(text[:match.end()].encode("utf-8")) - 1
        end = int(np.searchsorted(ends, last_byte, side="right")) + 1   # its last token + 1
        if start == 0:
            words.append((match.group(), math.nan, math.nan))
        else:
            plain = float(np.sum(logprobs[start - 1:end - 1]))
            words.append((match.group(), plain + log_b[end - 1] - before, plain))
        before, start = log_b[end - 1], end
    return words


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("stride", [128, 9])
def test_details_words_and_bits_per_byte_match_transformers(tiny_model, oracle, word_starts,
                                                           text, stride):
    n_positions = tiny_model.config.n_positions
    ids = tiny_model.tokenizer.encode(text * (3 if stride == 9 else 1))   # several windows
    text = tiny_model.tokenizer.decode(ids)
    rows = reference_rows(oracle, ids, n_positions, stride)
    log_p = reference.log_softmax(rows)
    targets = np.array(ids[1:])
    ref_logprobs = log_p[np.arange(len(ids) - 1), targets]
    score = tiny_model.score(text, stride=stride, details=True, top_k=5)
    details = score.details

    np.testing.assert_allclose(score.token_logprobs, ref_logprobs, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(score.token_logprobs,
                               tiny_model.score(text, stride=stride).token_logprobs, rtol=1e-6)
    scored_bytes = len(text.encode("utf-8")) - len(tiny_model.tokenizer.decode_bytes(ids[:1]))
    ref_bpb = -ref_logprobs.sum() / math.log(2) / scored_bytes
    assert score.scored_bytes == scored_bytes
    assert score.bits_per_byte == pytest.approx(ref_bpb, rel=RTOL)

    scored_rows = rows[:-1]
    target_logits = scored_rows[np.arange(len(targets)), targets][:, None]
    assert np.all(details.ranks >= 1 + np.sum(scored_rows > target_logits + TIE, axis=1))
    assert np.all(details.ranks <= 1 + np.sum(scored_rows > target_logits - TIE, axis=1))
    p = np.exp(log_p[:-1])
    np.testing.assert_allclose(details.entropies, -np.sum(p * log_p[:-1], axis=1),
                               rtol=RTOL, atol=ATOL)
    ours_under_ref = np.take_along_axis(log_p[:-1], details.top_ids, axis=1)
    np.testing.assert_allclose(details.top_logprobs, ours_under_ref, rtol=RTOL, atol=ATOL)
    best_ref = -np.sort(-log_p[:-1], axis=1)[:, :5]
    np.testing.assert_allclose(ours_under_ref, best_ref, rtol=0, atol=TIE)

    with np.errstate(divide="ignore"):
        log_b = np.log(np.sum(np.exp(log_p[:, word_starts]), axis=1))
    np.testing.assert_allclose(details.word_end_logprobs, log_b, rtol=RTOL, atol=ATOL)
    expected = reference_words(text, tiny_model.tokenizer, ids, ref_logprobs, log_b)
    words = score.words()
    assert [w.text for w in words] == [w for w, _, _ in expected]
    np.testing.assert_allclose([w.logprob for w in words], [lp for _, lp, _ in expected],
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose([w.plain_sum for w in words], [s for _, _, s in expected],
                               rtol=RTOL, atol=ATOL)
    assert any(len(range(*w.tokens)) >= 3 for w in words)        # words of many tokens
    assert not np.allclose([w.logprob for w in words[1:]], [w.plain_sum for w in words[1:]])


def test_a_text_after_end_of_text_scores_every_word_and_every_byte(tiny_model, oracle,
                                                                   word_starts):
    tokenizer = tiny_model.tokenizer
    text = "Words, all of them scored."
    ids = [tokenizer.eos_id, *tokenizer.encode(text)]
    score = tiny_model.score_ids(ids, details=True)
    log_p = reference.log_softmax(reference_rows(oracle, ids, 128, 64))
    assert score.scored_bytes == len(text.encode("utf-8"))   # <|endoftext|> is no text
    assert score.bits_per_byte == pytest.approx(
        -log_p[np.arange(len(ids) - 1), ids[1:]].sum() / math.log(2) / len(text), rel=RTOL)
    words = score.words()
    assert [w.text for w in words] == text.split() and words[0].tokens[0] == 1
    log_b = np.log(np.sum(np.exp(log_p[:, word_starts]), axis=1))
    first_end = words[0].tokens[1]
    plain = log_p[np.arange(first_end - 1), ids[1:first_end]].sum()
    assert words[0].logprob == pytest.approx(plain + log_b[first_end - 1], rel=RTOL)
    assert not any(math.isnan(w.logprob) for w in words)


def test_the_row_after_a_full_last_window_comes_from_one_more_window(tiny_model, oracle,
                                                                     word_starts):
    ids = tiny_model.tokenizer.encode(" ".join(["Words and more words."] * 40))[:129]
    # rows 0..127, then row 128
    log_p = reference.log_softmax(reference_rows(oracle, ids, 128, 128))
    score = tiny_model.score_ids(ids, stride=128, details=True)
    log_b = np.log(np.sum(np.exp(log_p[:, word_starts]), axis=1))
    np.testing.assert_allclose(score.details.word_end_logprobs, log_b, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(score.token_logprobs, log_p[np.arange(128), ids[1:]], rtol=RTOL,
                               atol=ATOL)


def test_bad_top_k_and_words_without_details_are_argument_errors(tiny_model):
    for top_k in (-1, 21, 2.5, "3"):
        with pytest.raises(ArgumentError, match="top_k must be an integer in 0..20") as error:
            tiny_model.score("Two tokens or more.", top_k=top_k)
        assert error.value.argument == "top_k"
    with pytest.raises(ArgumentError, match="details=True") as error:
        tiny_model.score("Two tokens or more.").words()
    assert error.value.argument == "details"


def test_plain_scores_carry_bits_per_byte_and_no_details(tiny_model):
    text = "It was a bright cold day in April, and the clocks were striking thirteen."
    plain, detailed = tiny_model.score(text), tiny_model.score(text, details=True)
    assert plain.details is None and plain.scored_bytes == detailed.scored_bytes
    assert plain.bits_per_byte == pytest.approx(detailed.bits_per_byte, rel=1e-6)  # other shapes
    assert detailed.details.top_ids.shape == (plain.tokens, 0)


def test_memory_is_one_window_whatever_the_text_length(tiny_model, monkeypatch):
    """Every forward of a details score is one window (at most n_positions rows of logits),
    one after the other, each reduced before the next: a text of 20 windows holds no more."""
    shapes = []
    forward = tiny_model.logits

    def logits(ids, from_position=0):
        out = forward(ids, from_position)
        shapes.append(out.shape)
        return out

    monkeypatch.setattr(tiny_model, "logits", logits)
    ids = np.random.default_rng(0).integers(0, 50256, 20 * 128 + 1)
    score = tiny_model.score_ids(ids, stride=128, details=True, top_k=2)
    assert len(shapes) == 21 and max(rows for rows, _ in shapes) <= 128   # 20 + the end row
    assert score.details.top_ids.shape == (ids.size - 1, 2)
