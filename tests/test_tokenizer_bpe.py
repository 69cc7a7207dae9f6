"""gpt2numba.tokenizer_bpe: the fast merge loops against bpe_reference, the textbook loop.

The reference gets GPT-2's vocabulary and merge ranks read plainly here (not by our parser) and
must encode like tiktoken; the fast loops (the rescan for short pieces, the heap for long ones)
must then give its ids on every word: the corpus's pieces, any bytes, made-up long words.
"""

import functools
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpt2numba import tokenizer_bpe
from gpt2numba.tokenizer import Tokenizer
from gpt2numba.tokenizer_bpe import bpe_reference
from gpt2numba.tokenizer_unicode import PATTERN
from support.paths import VOCAB_DIR
from support.tokenizer_corpus import (
    BYTE_TOKENS,
    EOT,
    corpus,
    gpt2_tokenizer,
    long_texts,
    oracle,
)

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def gpt2_tables():
    """GPT-2's vocabulary (token -> id) and merge ranks ((left, right) -> rank, 0 the best)."""
    vocab = json.loads((VOCAB_DIR / "vocab.json").read_text(encoding="utf-8"))
    lines = (VOCAB_DIR / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#version")
    return vocab, {tuple(line.split()): rank for rank, line in enumerate(lines[1:])}


def reference(data: bytes) -> list[int]:
    return bpe_reference(data, *gpt2_tables())


def fast(data: bytes) -> list[int]:
    return gpt2_tokenizer()._bpe(data)


@functools.cache
def corpus_pieces() -> list[bytes]:
    """Every distinct piece the pre-tokeniser cuts the corpus into, and the long texts' first
    300 characters (whole pieces of up to 300 letters, digits, spaces, CJK...), as UTF-8."""
    texts = list(corpus().values()) + [text[:300] for text in long_texts().values()]
    pieces = {piece for text in texts for piece in PATTERN.findall(text)}
    return sorted(piece.encode("utf-8") for piece in pieces)


def test_reference_gives_openais_ids():
    assert reference(b"Hello") == [15496]
    assert reference(b" world") == [995]
    assert reference(b"\n\n") == [628]
    assert reference(b"") == []
    assert reference(b"\xff") == [gpt2_tables()[0]["ÿ"]]  # a byte that is no UTF-8 alone


def test_reference_encodes_the_corpus_like_tiktoken():
    enc = oracle()
    for name, text in corpus().items():
        ids = [i for piece in PATTERN.findall(text) for i in reference(piece.encode("utf-8"))]
        assert ids == enc.encode_ordinary(text), name


def test_fast_equals_reference_on_every_piece_of_the_corpus():
    pieces = corpus_pieces()
    assert len(pieces) > 5000
    assert sum(len(p) > tokenizer_bpe._LONG_PIECE for p in pieces) >= 8  # the heap loop too
    bad = [p for p in pieces if fast(p) != reference(p)]
    assert not bad, bad[:5]


@SETTINGS
@given(st.binary(max_size=300))
def test_fast_equals_reference_on_any_bytes(data):
    assert fast(data) == reference(data)


FRAGMENTS = ["th", "e", " ", "in", "g", "an", "ation", "s", "'s", "\n", "0", "1", "é", "日",
             "🎉", "a", "aa", "ab", "  ", "x", "-", "=", "ing"]


@SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=150).map("".join))
def test_fast_equals_reference_on_long_made_up_words(word):
    data = word.encode("utf-8")
    assert fast(data) == reference(data)


def test_long_and_short_merge_loops_both_equal_the_reference(monkeypatch):
    """Pieces longer than _LONG_PIECE bytes use a heap; with the threshold out of reach the
    rescan takes every piece. Both must give the reference's ids."""
    rng = random.Random(5)
    alphabets = ["ab", "abc ", "aeiou", "0123456789", "日本語", "🎉a", "xyzxyz", " ", "\n "]
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200)))
             for alphabet in (rng.choice(alphabets) for _ in range(300))]
    words += ["a" * n for n in range(1, 150)] + [" " * n for n in range(1, 150)]
    data = [w.encode("utf-8") for w in words]
    expected = [reference(d) for d in data]
    bpe = gpt2_tokenizer()._bpe
    assert [bpe.merge_long(list(d.translate(bpe.byte_table))) for d in data] == expected
    monkeypatch.setattr(tokenizer_bpe, "_LONG_PIECE", 10**9)
    assert [bpe(d) for d in data] == expected


@pytest.mark.parametrize("text", ["abab", "ab" * 100, "aba"])
def test_every_occurrence_of_the_best_pair_merges_before_the_next_pair(text):
    """OpenAI's encoder merges *every* occurrence of the best pair before looking again.

    Here merge 0 ("ab", "a") only becomes possible after merge 1 ("a", "b"): in "abab" the
    original gives [ab, ab]; merging one pair at a time would give [aba, b]. The reference, the
    short loop and the long (heap) loop all follow the original.
    """
    vocab = {**{t: i for i, t in enumerate(BYTE_TOKENS)}, "aba": 256, "ab": 257, EOT: 258}
    merges = [("ab", "a"), ("a", "b")]
    expected = {"abab": [257, 257], "ab" * 100: [257] * 100, "aba": [256]}[text]
    data = text.encode()
    assert bpe_reference(data, vocab, {m: r for r, m in enumerate(merges)}) == expected
    assert Tokenizer(vocab, merges).encode(text) == expected
