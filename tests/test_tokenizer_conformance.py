"""gpt2numba's tokenizer against tiktoken's GPT-2 encoding, built from the same local files.

Id for id on English, code, every script, emoji, spaces, controls, contractions, 50 KB texts,
every Unicode code point; the character classes of the pre-tokeniser compared code point by
code point; decode compared byte for byte.
"""

import re
import unicodedata

import pytest
import tiktoken

from gpt2numba import tokenizer_unicode as unicode_classes
from support.tokenizer_corpus import (
    EOT,
    SPECIAL_TEXTS,
    all_code_points_text,
    corpus,
    gpt2_tokenizer,
    long_texts,
    oracle,
    source_file,
)

ALL_CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


@pytest.fixture(scope="module")
def tok():
    return gpt2_tokenizer()


@pytest.fixture(scope="module")
def enc():
    return oracle()


def mismatches(tok, enc, texts):
    """[(name, text, ours, theirs)] for the texts that encode differently."""
    bad = []
    for name, text in texts.items():
        ours, theirs = tok.encode(text), enc.encode_ordinary(text)
        if ours != theirs:
            bad.append((name, text[:80], ours[:20], theirs[:20]))
    return bad


def test_oracle_is_the_gpt2_encoding(enc):
    """The oracle is really GPT-2: known ids from OpenAI's encoder."""
    assert enc.n_vocab == 50257
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    assert enc.encode(EOT, allowed_special={EOT}) == [50256]


def test_corpus_matches_tiktoken(tok, enc):
    texts = corpus()
    assert len(texts) > 1000
    bad = mismatches(tok, enc, texts)
    assert not bad, f"{len(bad)} of {len(texts)} texts differ, e.g. {bad[:5]}"


@pytest.mark.parametrize("name", sorted(long_texts()))
def test_long_texts_match_tiktoken(tok, enc, name):
    text = long_texts()[name]
    assert len(text.encode("utf-8")) >= 50_000
    assert tok.encode(text) == enc.encode_ordinary(text)


@pytest.mark.parametrize("path", ["json/decoder.py", "inspect.py", "typing.py", "difflib.py"])
def test_stdlib_source_files_match_tiktoken(tok, enc, path):
    text = source_file(path)
    assert len(text) > 10_000
    assert tok.encode(text) == enc.encode_ordinary(text)


MIXED = ("", " ", "a", "1", "!", "  ", "\n")
# Planes 4-16 are unassigned, tags, variation selectors and private use (all "other"): fewer
# separators there keep the test fast (every code point is still in).
SPARSE = ("",) * 7 + (" ",) + ("",) * 7 + ("a",)


@pytest.mark.parametrize("start, stop, seps", [
    (0, 0x3000, MIXED), (0x3000, 0x10000, MIXED), (0x10000, 0x20000, MIXED),
    (0x20000, 0x40000, MIXED), (0x40000, 0x110000, SPARSE),
], ids=["BMP-1", "BMP-2", "SMP", "SIP+TIP", "planes-4-16"])
def test_every_code_point_matches_tiktoken(tok, enc, start, stop, seps):
    """Every code point (surrogates aside), next to letters, digits, symbols and spaces."""
    text = all_code_points_text(start, stop, seps)
    step = 20_000  # compare in chunks, to name where a difference is
    bad = []
    for i in range(0, len(text), step):
        chunk = text[i:i + step]
        if tok.encode(chunk) != enc.encode_ordinary(chunk):
            bad.append(f"U+{ord(chunk[0]):04X}..U+{ord(chunk[-1]):04X}")
    assert not bad, f"chunks that differ: {bad[:10]}"


def tiktoken_members(pattern):
    """The code points that tiktoken's regex engine matches with `pattern` (one char each).

    tiktoken drops the text its pattern does not match, so an encoding whose pattern is just
    the class, with the 256 single bytes as its only tokens, returns exactly the members.
    """
    enc = tiktoken.Encoding(name="class-probe", pat_str=pattern,
                            mergeable_ranks={bytes([b]): b for b in range(256)},
                            special_tokens={})
    text = "".join(map(chr, ALL_CODE_POINTS))
    return set(map(ord, enc.decode_bytes(enc.encode_ordinary(text)).decode("utf-8")))


def table_members(text):
    return {cp for a, b in unicode_classes.parse_ranges(text) for cp in range(a, b + 1)}


def pattern_members(fragment):
    text = "".join(map(chr, ALL_CODE_POINTS))
    return set(map(ord, "".join(re.findall(fragment, text))))


@pytest.mark.parametrize("name, cls, table", [
    ("letters", r"\p{L}", unicode_classes.LETTERS),
    ("numbers", r"\p{N}", unicode_classes.NUMBERS),
    ("spaces", r"\s", unicode_classes.SPACES),
])
def test_character_classes_equal_tiktoken(name, cls, table):
    """\\p{L}, \\p{N} and \\s: our Unicode 16.0 tables == tiktoken's, code point by code point,
    and the compiled ``re`` fragments match exactly the tables."""
    ours = table_members(table)
    theirs = tiktoken_members(cls)
    assert ours == theirs, (
        f"{name}: only ours {sorted(map(hex, ours - theirs))[:10]} "
        f"({len(ours - theirs)}), only tiktoken's {sorted(map(hex, theirs - ours))[:10]} "
        f"({len(theirs - ours)}). gpt2numba pins Unicode {unicode_classes.UNICODE_VERSION}, as "
        f"tiktoken 0.14 does; tiktoken {tiktoken.__version__} has other tables (0.7.0 has "
        "Unicode 15's): test with tiktoken 0.14.x"
    )
    fragment = unicode_classes.run_of(unicode_classes.parse_ranges(table))
    assert pattern_members(fragment) == ours


def test_other_class_is_the_complement():
    """[^\\s\\p{L}\\p{N}] as compiled: every code point in none of the three tables."""
    letters = unicode_classes.parse_ranges(unicode_classes.LETTERS)
    numbers = unicode_classes.parse_ranges(unicode_classes.NUMBERS)
    spaces = unicode_classes.parse_ranges(unicode_classes.SPACES)
    others = unicode_classes.complement(letters, numbers, spaces)
    expected = set(ALL_CODE_POINTS) - {
        cp for a, b in letters + numbers + spaces for cp in range(a, b + 1)}
    assert pattern_members(unicode_classes.run_of(others)) == expected


def test_tables_agree_with_this_pythons_unicodedata_where_it_knows_the_character():
    """Independent check of the tables: for every code point assigned in this Python's
    Unicode (3.11: 14.0), letter and number membership is its general category. The tables
    only add characters assigned later."""
    letters = table_members(unicode_classes.LETTERS)
    numbers = table_members(unicode_classes.NUMBERS)
    bad = []
    for cp in ALL_CODE_POINTS:
        cat = unicodedata.category(chr(cp))
        if cat == "Cn":
            continue
        if (cp in letters) != (cat[0] == "L") or (cp in numbers) != (cat[0] == "N"):
            bad.append((hex(cp), cat))
    assert not bad, bad[:20]


def test_allow_special_matches_tiktoken(tok, enc):
    texts = list(SPECIAL_TEXTS) + [f"{t}{EOT}{t}" for t in list(corpus().values())[:200]]
    for text in texts:
        assert tok.encode(text, allow_special=True) == enc.encode(text, allowed_special={EOT})
        assert tok.encode(text) == enc.encode_ordinary(text)


def test_every_token_decodes_like_tiktoken(tok, enc):
    ids = list(range(enc.n_vocab))
    assert [tok.decode_bytes([i]) for i in ids] == [enc.decode_bytes([i]) for i in ids]
    assert tok.decode_bytes(ids) == enc.decode_bytes(ids)


def test_the_text_of_every_token_encodes_like_tiktoken(tok, enc):
    """The whole vocabulary, each token's text on its own line (tokens that are whole
    UTF-8 text)."""
    texts = []
    for i in range(50256):
        try:
            texts.append(tok.decode_bytes([i]).decode("utf-8"))
        except UnicodeDecodeError:
            pass
    assert len(texts) > 45_000
    text = "\n".join(texts)
    assert tok.encode(text) == enc.encode_ordinary(text)


def test_decode_matches_tiktoken_on_every_prefix(tok, enc):
    """decode and decode_bytes of every prefix of the ids, including those that end inside a
    multi-byte character (decode replaces the incomplete tail with U+FFFD, like tiktoken)."""
    for name, text in corpus().items():
        if name.startswith(("emoji", "cjk", "combining", "digits", "script[C", "misc")):
            ids = tok.encode(text)
            for k in range(len(ids) + 1):
                assert tok.decode_bytes(ids[:k]) == enc.decode_bytes(ids[:k])
                assert tok.decode(ids[:k]) == enc.decode(ids[:k])
