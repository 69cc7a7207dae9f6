"""Streaming text: UTF-8 characters split across tokens, stop strings held back and cut."""

import pytest

from gpt2numba.generate import stream_text

TEXT = "Emoji 👩‍👩‍👧‍👦 and 日本語のテキスト, ünïcödé, 🇺🇦 flags; done.\n\nNext paragraph."


class ReplayedIds:
    """A stand-in for Generation that replays fixed ids (stream_text only iterates it)."""

    def __init__(self, ids):
        self.ids = ids
        self.stop_reason = "length"

    def __iter__(self):
        return iter(self.ids)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return tiny_model.tokenizer


def test_multibyte_characters_are_never_cut(tokenizer):
    ids = tokenizer.encode(TEXT)
    assert any("\ufffd" in tokenizer.decode([i]) for i in ids), "the text must split a character"
    pieces = list(stream_text(ReplayedIds(ids), tokenizer))
    assert "".join(pieces) == TEXT
    assert not any("\ufffd" in piece for piece in pieces)


@pytest.mark.parametrize("stop,expected", [
    (["\n\n"], "Emoji 👩‍👩‍👧‍👦 and 日本語のテキスト, ünïcödé, 🇺🇦 flags; done."),
    (["日本"], "Emoji 👩‍👩‍👧‍👦 and "),
    (["flags", "ünï"], "Emoji 👩‍👩‍👧‍👦 and 日本語のテキスト, "),
    (["not there"], TEXT),
])
def test_stop_strings_end_the_text_and_are_not_included(tokenizer, stop, expected):
    replay = ReplayedIds(tokenizer.encode(TEXT))
    pieces = list(stream_text(replay, tokenizer, stop))
    assert "".join(pieces) == expected
    assert replay.stop_reason == ("length" if stop == ["not there"] else "stop")
    assert not any(s in piece for s in stop for piece in pieces)


def test_stream_equals_generate(tiny_model):
    pieces = list(tiny_model.stream("Hello there", 25))
    assert "".join(pieces) == tiny_model.generate("Hello there", 25)
    assert len(pieces) > 1


def test_generate_with_stop_ends_before_it(tiny_model):
    full = tiny_model.generate("Hello", 30, stop_at_eos=False)
    stop = full[10:13]
    cut = tiny_model.generate("Hello", 30, stop=[stop], stop_at_eos=False)
    assert cut == full[:full.index(stop)]
    ids = tiny_model.generate_ids(tiny_model.tokenizer.encode("Hello"), 30, stop=stop, stop_at_eos=False)
    assert stop not in tiny_model.tokenizer.decode(ids)
    assert full.startswith(tiny_model.tokenizer.decode(ids))
