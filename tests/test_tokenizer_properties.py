"""Property tests of the tokenizer on arbitrary text (hypothesis), with tiktoken as the oracle."""

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.tokenizer_corpus import EOT, gpt2_tokenizer, oracle

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Any text (the default alphabet: every code point but surrogates, which UTF-8 cannot encode;
# st.characters() alone does produce them),
# and text made of the pieces the pre-tokeniser cares about, so that runs and boundaries
# (spaces before letters, contractions, digit runs, CR/LF) come up often.
any_text = st.text()
PIECES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "'s", "'S", "'ll", "'", "a", "Z",
          "é", "日", "ß", "1", "٣", "½", "Ⅻ", "!", "?!", "...", "🎉", "\u200d", "\u0301",
          "\U0001f3fd", EOT, "<|", "|>", "x", "the", " the", "\x00", "\x1c", "\x85"]
characters = st.characters(exclude_categories=["Cs"])  # no surrogates here either
tricky_text = st.lists(st.one_of(st.sampled_from(PIECES), characters), max_size=40).map("".join)
texts = st.one_of(any_text, tricky_text)


def no_surrogates(s):
    return not any(unicodedata.category(c) == "Cs" for c in s)


@SETTINGS
@given(texts)
def test_decode_inverts_encode(s):
    assert no_surrogates(s)  # st.text() leaves them out; they have no UTF-8
    tok = gpt2_tokenizer()
    ids = tok.encode(s)
    assert tok.decode(ids) == s
    assert tok.decode_bytes(ids) == s.encode("utf-8")


@SETTINGS
@given(texts)
def test_encode_equals_tiktoken(s):
    assert gpt2_tokenizer().encode(s) == oracle().encode_ordinary(s)


@SETTINGS
@given(texts)
def test_encode_with_special_equals_tiktoken(s):
    tok, enc = gpt2_tokenizer(), oracle()
    assert tok.encode(s, allow_special=True) == enc.encode(s, allowed_special={EOT})


@SETTINGS
@given(texts)
def test_stream_decoder_reproduces_the_text(s):
    tok = gpt2_tokenizer()
    decoder = tok.stream_decoder()
    pieces = [decoder.push(i) for i in tok.encode(s)]
    assert "".join(pieces) + decoder.flush() == s
    if "\ufffd" not in s:
        assert not any("\ufffd" in p for p in pieces)


@SETTINGS
@given(st.lists(st.integers(0, 50256), max_size=30))
def test_decode_of_any_ids_equals_tiktoken(ids):
    tok, enc = gpt2_tokenizer(), oracle()
    assert tok.decode_bytes(ids) == enc.decode_bytes(ids)
    assert tok.decode(ids) == enc.decode(ids)
