"""Texts for the tokenizer's conformance tests, the oracle (tiktoken built from local files),
and builders of small vocab.json / merges.txt pairs.

Everything here is made on the machine: real English and Python source from the standard
library, and text generated from Unicode data. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sysconfig
import unicodedata
from pathlib import Path

from gpt2numba.tokenizer import Tokenizer, bytes_to_unicode
from support.paths import VOCAB_DIR

EOT = "<|endoftext|>"
# tiktoken's r50k/gpt2 pattern (tiktoken_ext/openai_public.py), equivalent to GPT-2's original.
R50K_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
VOCAB_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
MERGES_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
STDLIB = Path(sysconfig.get_paths()["stdlib"])


@functools.cache
def oracle():
    """tiktoken's GPT-2 encoding built from ../shared/gpt2-vocab (hash-checked, no download)."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    # Local paths are read directly; an empty cache dir keeps tiktoken from writing a copy.
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""
    try:
        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(VOCAB_DIR / "merges.txt"),
            encoder_json_file=str(VOCAB_DIR / "vocab.json"),
            vocab_bpe_hash=MERGES_SHA256,
            encoder_json_hash=VOCAB_SHA256,
        )
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous
    return tiktoken.Encoding(
        name="gpt2-local", pat_str=R50K_PATTERN, mergeable_ranks=ranks,
        special_tokens={EOT: 50256}, explicit_n_vocab=50257,
    )


@functools.cache
def gpt2_tokenizer():
    """gpt2numba's Tokenizer on the real GPT-2 files (shared by the test modules)."""
    return Tokenizer.from_files(VOCAB_DIR / "vocab.json", VOCAB_DIR / "merges.txt")


# ------------------------------------------------------------------------------ real text

@functools.cache
def english_prose(n_chars: int = 60_000) -> str:
    """Real English: the Python reference documentation shipped in pydoc_data."""
    import pydoc_data.topics

    text = "\n\n".join(pydoc_data.topics.topics.values())
    return text[:n_chars]


def source_file(relative: str) -> str:
    """A stdlib source file's text, e.g. source_file("json/decoder.py")."""
    return (STDLIB / relative).read_text(encoding="utf-8")


@functools.cache
def python_source(n_chars: int = 60_000) -> str:
    """Real Python source code: json/decoder.py, then other stdlib modules."""
    parts, size = [], 0
    for name in ("json/decoder.py", "json/encoder.py", "textwrap.py", "argparse.py"):
        text = source_file(name)
        parts.append(text)
        size += len(text)
        if size >= n_chars:
            break
    return "".join(parts)[:n_chars]


# ----------------------------------------------------------------------- generated text

@functools.cache
def script_samples() -> dict[str, str]:
    """For every script in this Python's Unicode data, made-up words of its letters, digits
    and marks, with spaces and punctuation: {script name: text}.

    The script is the first word of the character name (LATIN, CYRILLIC, DEVANAGARI, CJK, ...).
    """
    rng = random.Random(1234)
    by_script: dict[str, list[str]] = {}
    for cp in range(0x20, 0x110000):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat[0] not in "LMN":
            continue
        name = unicodedata.name(ch, "")
        if not name:
            continue
        by_script.setdefault(name.split()[0], []).append(ch)
    samples = {}
    for script, chars in sorted(by_script.items()):
        words = []
        for _ in range(12):
            word = "".join(rng.choice(chars) for _ in range(rng.randint(1, 7)))
            words.append(word)
        text = ""
        for word in words:
            text += word + rng.choice([" ", " ", " ", ", ", ". ", "\n", "  ", "-", "'s "])
        samples[script] = text
    return samples


EMOJI = [
    "🎉", "😀😃😄", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🏴‍☠️", "❤️‍🔥", "🧑🏿‍🤝‍🧑🏻",
    "🇫🇷🇯🇵🇺🇸", "1️⃣2️⃣#️⃣", "☺️☺︎", "🫠🫨🪿", "I ❤️ 🍕 and 🍺!", "emoji🎉inside🎉words",
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "👁️‍🗨️", "⌚⌛⏰", " 🎉 🎉  🎉",
]

COMBINING = [
    "e\u0301 é", "Z\u0351\u0358\u0350a\u0310\u0344l\u0301g\u0304o\u0306", "a\u0308\u0323",
    "\u1100\u1161\u11a8 한국어", "नमस्ते क्षत्रिय", "ภาษาไทย", "\u0915\u094d\u200d\u0937",
    "Ǆǅǆ ﬁﬂ", "\u0301leading mark", "x\u20dd", "ﷺ", "ཀྵ",
]

CJK = [
    "日本語のテキストです。", "中文文本，包括标点。", "一二三四五六七八九十百千万亿", "〇壱弐参",
    "零点五", "漢字かなカナ", "ｶﾀｶﾅ", "한국어 텍스트", "𠀀𠀁𪜀 (CJK Ext B)", "々〆〤",
    "第3章 第三章", "２０２４年",
]

DIGITS = [
    "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "০১২৩", "๐๑๒๓", "０１２３４５６７８９",
    "123٤٥٦", "x٣y", "²³¹ ½¼¾ ①②③ ⑴", "𝟎𝟏𝟐𝟗", "3.14159 2,718 1e-9 0x1F", "１２３abc",
]

ROMAN = ["Ⅰ Ⅱ Ⅲ Ⅳ Ⅻ ⅿ", "ⅫⅪ", "Chapter Ⅳ", "ⅰⅱⅲ", "ↀↁↂ"]

UNICODE_SPACES = [
    "\u00a0", "\u1680", *(chr(c) for c in range(0x2000, 0x200B)), "\u2028", "\u2029",
    "\u202f", "\u205f", "\u3000", "\u0085", "\u180e", "\u200b", "\ufeff", "\u001c", "\u001d",
    "\u001e", "\u001f",
]


def whitespace_texts() -> list[str]:
    """Runs of spaces, tabs, CR/LF, mixes, and every Unicode space in letter contexts."""
    texts = [
        " ", "  ", "   ", " " * 17, "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n",
        "\r", "\r\r\n\n", " \n", "\n ", " \n ", "\t \n\r ", "a  b", "a   b", "a\tb", "a \tb",
        "a\t b", "a\n\nb", "a \n b", "a  \n\n  b", "line1\r\nline2\r\n", "x \t \t y",
        "trailing   ", "   leading", "  \t\t  \n", " " * 64 + "x", "x" + " " * 64,
        "def f():\n    return 1\n\n\n    \n", "\t\tindented\n\t\t\tmore",
        "a " * 50, "\n" * 30 + "end", " !", "  !", "   !!", " 1", "  1", "  a", " \u00a0a",
    ]
    for space in UNICODE_SPACES:
        texts += [f"a{space}b", f"{space}a", f"a{space}", f"{space}{space}x", f" {space}1",
                  f"1{space}{space} 2", f"!{space}!", f"{space}"]
    return texts


def control_texts() -> list[str]:
    """Every ASCII control character, alone, doubled, and between letters and spaces."""
    texts = []
    for cp in list(range(0x20)) + [0x7F]:
        c = chr(cp)
        texts += [c, c * 3, f"a{c}b", f" {c} ", f"x{c}{c} y", f"1{c}2", f"!{c}"]
    texts.append("".join(chr(cp) for cp in range(0x80)))
    return texts


def contraction_texts() -> list[str]:
    """The contractions in every letter case, with straight and curly apostrophes."""
    base = ["s", "t", "re", "ve", "m", "ll", "d"]
    texts = []
    for c in base:
        variants = {c, c.upper(), c.capitalize(), c[:-1] + c[-1].upper()}
        for v in variants:
            for q in ("'", "\u2019", "\u02bc", "`"):
                texts += [f"{q}{v}", f"it{q}{v}", f"IT{q}{v} ", f" {q}{v}", f"{q}{v}{v}x",
                          f"''{v}", f"x {q}{v} y", f"1{q}{v}"]
    texts += [
        "don't", "DON'T", "y'all'd've", "I'm", "I'M", "we're", "We'Re", "you'll", "You'LL",
        "she'd", "it’s", "It's'", "'''", "'s's's", "rock'n'roll", "'", " '", "' ", "'S'T'RE",
        "o'clock", "' s", "'\ns", "l'été", "'ll've", "aren't'nt",
    ]
    return texts


SPECIAL_TEXTS = [
    EOT, f"a{EOT}b", f"{EOT}{EOT}", f" {EOT} ", f"{EOT}\n", "<|endoftext|", "|endoftext|>",
    "<|endoftext|>>", "<<|endoftext|>", "<|ENDOFTEXT|>", f"Hello{EOT}world{EOT}", f"\n\n{EOT}",
    "<|startoftext|>", "<|fim_prefix|>", "<| endoftext |>",
]

MISC = [
    "", "a", "A", "!", "Hello world", "Hello, world!", "GPT-2 is a language model.",
    "naïve café résumé Ærøskøbing Ōsaka Straße", "Привет, мир! Ελληνικά", "مرحبا بالعالم",
    "שלום עולם", "Ünïcödé", "ﬀ ﬃ", "https://example.com/path?q=1&r=2#frag",
    "user@example.com", "C:\\Program Files\\x", "$100.00 €50 £3 ¥1000 ₹20 ₿",
    "\U0010ffff\U000e0001\ue000", "\ufffd", "\ufffc\ufffe\uffff", "«quoted» „quoted“ ‘q’",
    "i++; x-=1; a!=b; a->b; a=>b; ...", "!!!???...", "__init__ _private __dunder__",
    "CamelCaseWord snake_case_word kebab-case-word", "ALLCAPS lowercase MiXeD",
    "1234567890 12345678901234567890", "0.000001", "3rd 21st 1990s", "ＡＢＣ ａｂｃ",
    "𝐁𝐨𝐥𝐝 𝕏 𝔉𝔯𝔞𝔨𝔱𝔲𝔯", "©®™ §¶ †‡ •…", "→←↑↓ ∀∃∅∈ ≤≥≠ ∞ √", "♠♣♥♦ ♪♫",
    "ǅ ǈ ǋ ǲ", "ʰʲʷ ˈˌ ː", "ᴬᴮᴰ", "Ꭰ Ꮳ", "ᚠᚢᚦ ᚨᚱᚲ", "ꙮ", "𓀀𓀁𓀂", "𒀀𒀁", "𐌰𐌱𐌲",
]


@functools.cache
def long_texts() -> dict[str, str]:
    """Texts of 50 KB or more: prose, code, and degenerate long pieces."""
    rng = random.Random(99)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return {
        "prose": english_prose(60_000),
        "code": python_source(60_000),
        "spaces": " " * 60_000 + "x",
        "newlines": "\n" * 20_000 + "x" + "\r\n" * 20_000,
        "one_word": "".join(rng.choice(letters) for _ in range(60_000)),
        "same_letter": "a" * 60_001,
        "digits": "".join(rng.choice("0123456789") for _ in range(55_000)),
        "punct": "".join(rng.choice("!@#$%^&*()[]{};:,./<>?~-=+") for _ in range(55_000)),
        "cjk": "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(20_000)),
        "emoji": "".join(rng.choice(EMOJI) for _ in range(8_000)),
        "mixed": "".join(
            rng.choice([rng.choice(letters), " ", "\n", "1", "é", "日", "🎉", "'s", "\t", "!"])
            for _ in range(60_000)
        ),
    }


def all_code_points_text(start: int, stop: int, seps=("", " ", "a", "1", "!", "  ", "\n")) -> str:
    """Every code point in [start, stop) except surrogates, each next to a cycling separator,
    so each meets letters, digits, symbols, spaces and itself."""
    out = []
    k = 0
    for cp in range(start, stop):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        out.append(chr(cp))
        out.append(seps[k % len(seps)])
        k += 1
    return "".join(out)


def corpus() -> dict[str, str]:
    """All the short and medium conformance texts, by a readable id."""
    texts: dict[str, str] = {}

    def add(group, items):
        for i, t in enumerate(items):
            texts[f"{group}[{i}]"] = t

    add("misc", MISC)
    add("emoji", EMOJI)
    add("combining", COMBINING)
    add("cjk", CJK)
    add("digits", DIGITS)
    add("roman", ROMAN)
    add("whitespace", whitespace_texts())
    add("control", control_texts())
    add("contraction", contraction_texts())
    add("special", SPECIAL_TEXTS)
    for script, text in script_samples().items():
        texts[f"script[{script}]"] = text
    prose = english_prose(20_000)
    add("prose", [prose[i:i + 2000] for i in range(0, len(prose), 2000)])
    return texts


# ---------------------------------------------------------------- small tokenizer files

BYTE_TOKENS = sorted(bytes_to_unicode().values())  # GPT-2 order: id 0 is "!", 188.. unprintable
TOY_MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("a", "a")]


def toy_vocab(merges=TOY_MERGES) -> dict[str, int]:
    """The 256 byte tokens, the result of each merge, then <|endoftext|>: token -> id."""
    vocab = {t: i for i, t in enumerate(BYTE_TOKENS)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab[EOT] = len(vocab)
    return vocab


def write_files(folder, merges, *, vocab=None, vocab_text=None, merges_text=None):
    """vocab.json (one token per line: line k+2 holds id k) and merges.txt in `folder`."""
    if vocab is None:
        vocab = toy_vocab(merges)
    if vocab_text is None:
        vocab_text = json.dumps(vocab, indent=0, ensure_ascii=False)
    if merges_text is None:
        merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (folder / "vocab.json").write_text(vocab_text, encoding="utf-8")
    (folder / "merges.txt").write_text(merges_text, encoding="utf-8")
    return folder / "vocab.json", folder / "merges.txt"
