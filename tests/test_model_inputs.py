"""What the model accepts and refuses, and how it behaves at the edges of its context."""

import threading
import warnings

import numpy as np
import pytest

from gpt2numba import ArgumentError
from gpt2numba.generate import ContextFullWarning


def test_prompt_longer_than_context_is_refused(tiny_model):
    with pytest.raises(ValueError, match=r"the input is 129 tokens; .* at most 128"):
        tiny_model.logits([1] * 129)
    with pytest.raises(ValueError, match="129 tokens"):
        tiny_model.generate_ids([1] * 129, 5)


@pytest.mark.parametrize("ids,message", [
    ([], "non-empty"), ([50257], "token id 50257 is out of range"), ([3, -1], "token id -1"),
    ([[1, 2]], "1-D"), ([1.5], "integer"),
])
def test_bad_ids_are_refused(tiny_model, ids, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.logits(ids)


@pytest.mark.parametrize("option,value", [
    ("temperature", -0.1), ("top_p", 0.0), ("top_p", 1.5), ("top_k", -1),
    ("repetition_penalty", 0.0), ("max_new_tokens", -1),
])
def test_bad_sampling_options_name_the_argument(tiny_model, option, value):
    kwargs = {"max_new_tokens": 3, option: value}
    with pytest.raises(ValueError, match=option):
        tiny_model.generate("Hello", **kwargs)
    with pytest.raises(ValueError) as refused:
        tiny_model.stream("Hello", **kwargs)  # when the stream is made, before any text
    assert refused.value.argument == option   # for a caller that names its own option


def test_a_prompt_longer_than_the_context_is_refused_when_the_stream_is_made(tiny_model):
    prompt = " x" * 129
    with pytest.raises(ValueError, match="129 tokens") as refused:
        tiny_model.stream(prompt, 5)
    assert refused.value.argument == "prompt"


def test_generation_stops_at_the_context_and_says_so(tiny_model):
    prompt = [int(i) for i in np.random.default_rng(0).integers(0, 50000, size=120)]
    with pytest.warns(ContextFullWarning, match="128-token context"):
        new = tiny_model.generate_ids(prompt, 20)
    assert len(new) == 8


def test_slide_keeps_going_on_the_last_tokens(tiny_model):
    prompt = [int(i) for i in np.random.default_rng(0).integers(0, 50000, size=120)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContextFullWarning)
        new = tiny_model.generate_ids(prompt, 20, slide=True, stop_at_eos=False)
    assert len(new) == 20
    context = prompt + new[:8]                        # 128 tokens: the window is full here
    assert new[8] == int(np.argmax(tiny_model.next_token_logits(context[-128:])))
    assert new[9] == int(np.argmax(tiny_model.next_token_logits((context + new[8:9])[-128:])))


def test_slide_accepts_a_prompt_longer_than_the_context(tiny_model):
    prompt = [int(i) for i in np.random.default_rng(1).integers(0, 50000, size=200)]
    new = tiny_model.generate_ids(prompt, 3, slide=True, stop_at_eos=False)
    assert new == tiny_model.generate_ids(prompt[-128:], 3, slide=True, stop_at_eos=False)


def test_empty_prompt_conditions_on_endoftext(tiny_model):
    eos = tiny_model.tokenizer.eos_id
    expected = tiny_model.tokenizer.decode(tiny_model.generate_ids([eos], 6, stop_at_eos=False))
    assert tiny_model.generate("", 6, stop_at_eos=False) == expected


def test_zero_new_tokens(tiny_model):
    assert tiny_model.generate("Hello", 0) == ""
    assert tiny_model.generate_ids([1, 2], 0) == []


def test_two_threads_at_once_get_correct_logits(tiny_model):
    ids = [[15496, 995], list(range(100, 140))]
    expected = [tiny_model.logits(x) for x in ids]
    results, errors = {}, []

    def work(k):
        try:
            for _ in range(10):
                results[k] = tiny_model.logits(ids[k])
                np.testing.assert_array_equal(results[k], expected[k])
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_logits_from_a_position_are_the_tail_of_every_positions_logits(tiny_model):
    ids = tiny_model.tokenizer.encode("The quick brown fox jumps over the lazy dog")
    every = tiny_model.logits(ids)
    for first in (0, 1, len(ids) // 2, len(ids) - 1):
        # linear tiles the rows it is given in fours, so fewer rows sum some outputs in another
        # order: equal to float32 rounding (1e-6 of the largest logit), not bit for bit.
        np.testing.assert_allclose(tiny_model.logits(ids, from_position=first), every[first:],
                                   rtol=0, atol=1e-6 * np.abs(every).max())


@pytest.mark.parametrize("first", [-1, 10, True, 1.0])
def test_from_position_outside_the_input_is_refused(tiny_model, first):
    with pytest.raises(ArgumentError, match="from_position must be an integer in 0..9"):
        tiny_model.logits(list(range(10)), from_position=first)


def test_counts_accept_numpy_integers_and_refuse_bools(tiny_model):
    """issue 10: max_new_tokens=np.int64(2) was refused while True was taken as 1."""
    assert len(tiny_model.generate_ids([464, 3290], np.int64(2), stop_at_eos=False)) == 2
    with pytest.raises(ValueError, match="max_new_tokens") as refused:
        tiny_model.generate_ids([464, 3290], True)
    assert refused.value.argument == "max_new_tokens"
    ids = list(range(1000, 1010))
    assert tiny_model.score_ids(ids, np.int64(4)).tokens == 9
    with pytest.raises(ArgumentError, match="stride") as refused:
        tiny_model.score_ids(ids, True)
    assert refused.value.argument == "stride"
