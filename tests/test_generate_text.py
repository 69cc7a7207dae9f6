"""The decoding loop below the model, and streaming text: UTF-8 characters split across tokens,
stop strings held back and cut, why it stopped and how long it took."""

import numpy as np
import pytest

from gpt2numba.generate import Generation, TextStream

TEXT = "Emoji 👩‍👩‍👧‍👦 and 日本語のテキスト, ünïcödé, 🇺🇦 flags; done.\n\nNext paragraph."


class ReplayedIds:
    """A stand-in for Generation that replays fixed ids (TextStream iterates it and reads its
    stop_reason)."""

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
    pieces = list(TextStream(ReplayedIds(ids), tokenizer))
    assert "".join(pieces) == TEXT
    assert not any("\ufffd" in piece for piece in pieces)


@pytest.mark.parametrize("stop,expected", [
    (["\n\n"], "Emoji 👩‍👩‍👧‍👦 and 日本語のテキスト, ünïcödé, 🇺🇦 flags; done."),
    (["日本"], "Emoji 👩‍👩‍👧‍👦 and "),
    (["flags", "ünï"], "Emoji 👩‍👩‍👧‍👦 and 日本語のテキスト, "),
    (["not there"], TEXT),
])
def test_stop_strings_end_the_text_and_are_not_included(tokenizer, stop, expected):
    stream = TextStream(ReplayedIds(tokenizer.encode(TEXT)), tokenizer, stop)
    pieces = list(stream)
    assert "".join(pieces) == expected
    assert stream.stop_reason == ("length" if stop == ["not there"] else "stop")
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
    ids = tiny_model.generate_ids(tiny_model.tokenizer.encode("Hello"), 30, stop=stop,
                                  stop_at_eos=False)
    assert stop not in tiny_model.tokenizer.decode(ids)
    assert full.startswith(tiny_model.tokenizer.decode(ids))


# -- the loop on its own: a next-logits function, n_positions and the eos id -------------------

VOCAB = 10


def count_up(ids):
    """Logits [VOCAB] float32 whose argmax is the last id + 1 (mod VOCAB): greedy counts up."""
    logits = np.zeros(VOCAB, dtype=np.float32)
    logits[(int(ids[-1]) + 1) % VOCAB] = 1.0
    return logits


def test_the_loop_needs_only_a_logits_function_the_context_and_eos():
    seen = []

    def next_logits(ids):
        seen.append(list(ids))
        return count_up(ids)

    generation = Generation(next_logits, [2, 3], n_positions=8, eos_id=9, max_new_tokens=10)
    assert list(generation) == [4, 5, 6, 7, 8]                  # 9 is the eos id: not kept
    assert generation.stop_reason == "eos" and generation.new_ids == [4, 5, 6, 7, 8]
    assert seen[0] == [2, 3] and seen[-1] == [2, 3, 4, 5, 6, 7, 8]
    assert generation.seconds >= generation.first_token_seconds >= 0


def test_the_loop_stops_at_the_context_or_slides_over_it():
    full = Generation(count_up, [0, 1, 2], n_positions=5, eos_id=9, max_new_tokens=10)
    assert list(full) == [3, 4] and full.stop_reason == "context"
    windows = []

    def next_logits(ids):
        windows.append(list(ids))
        return count_up(ids)

    slid = Generation(next_logits, [0, 1, 2, 3, 4, 5, 6], n_positions=5, eos_id=99,
                      max_new_tokens=4, slide=True)
    assert list(slid) == [7, 8, 9, 0] and slid.stop_reason == "length"
    assert all(len(w) == 5 for w in windows) and windows[-1] == [5, 6, 7, 8, 9]


def test_an_empty_prompt_starts_from_eos():
    generation = Generation(count_up, [], n_positions=5, eos_id=6, max_new_tokens=3,
                            stop_at_eos=False)
    assert generation.prompt_ids == [6] and list(generation) == [7, 8, 9]


def test_the_stream_tells_why_it_stopped_and_how_long_it_took(tiny_model):
    stream = tiny_model.stream("Hello", 6, stop_at_eos=False)
    text = "".join(stream)
    assert stream.stop_reason == "length" and stream.stopped_because == "max_new_tokens reached"
    assert len(stream.new_ids) == 6 and tiny_model.tokenizer.decode(stream.new_ids) == text
    assert stream.seconds >= stream.first_token_seconds > 0
    assert iter(stream) is stream                                 # an iterator, as a generator is
