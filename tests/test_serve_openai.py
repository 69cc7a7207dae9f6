"""`gpt2numba serve` driven by OpenAI's own Python client: every prompt form, streaming and not,
echo with logprobs (against GPT-2 in plain float64 NumPy), stop, seed, max_tokens 0, and greedy
answers equal to the library's in this process."""

import numpy as np
import openai
import pytest

from gpt2numba import GPT2
from gpt2numba.weights import load_tensors
from support import reference


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def model(serve_checkpoint):
    return GPT2.from_pretrained(serve_checkpoint)


@pytest.fixture(scope="module")
def name(serve_checkpoint):
    return str(serve_checkpoint)


def exact_logprobs(model, checkpoint, ids):
    """float64 log-softmax [n, vocab] of GPT-2 in plain NumPy (tests/support/reference.py)."""
    logits = reference.gpt2(np.asarray(ids), load_tensors(checkpoint, model.config), model.config)
    peak = logits.max(axis=1, keepdims=True)
    return logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))


PROMPT = "The quick brown fox jumps over the lazy"


def test_every_prompt_form_gives_the_librarys_greedy_text(client, model, name):
    ids = model.tokenizer.encode(PROMPT)
    expected = model.tokenizer.decode(model.generate_ids(ids, 8, temperature=0))
    other = "Hello world"
    other_text = model.tokenizer.decode(model.generate_ids(model.tokenizer.encode(other), 8))
    for prompt, texts in ((PROMPT, [expected]), (ids, [expected]),
                          ([PROMPT, other], [expected, other_text]),
                          ([ids, model.tokenizer.encode(other)], [expected, other_text])):
        done = client.completions.create(model=name, prompt=prompt, max_tokens=8, temperature=0)
        assert [c.index for c in done.choices] == list(range(len(texts)))
        assert [c.text for c in done.choices] == texts
        assert all(c.finish_reason == "length" for c in done.choices)
        assert done.usage.prompt_tokens == sum(len(model.tokenizer.encode(p)) for p in
                                               ([PROMPT] if len(texts) == 1 else [PROMPT, other]))
        assert done.usage.completion_tokens == 8 * len(texts)


def test_streaming_gives_the_same_text_in_pieces_then_done(client, model, name):
    whole = client.completions.create(model=name, prompt=PROMPT, max_tokens=12, temperature=0)
    events = list(client.completions.create(model=name, prompt=PROMPT, max_tokens=12,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    pieces = [e.choices[0].text for e in events if e.choices]
    assert len(pieces) > 2 and "".join(pieces) == whole.choices[0].text
    assert [e.choices[0].finish_reason for e in events if e.choices][-1] == "length"
    assert events[-1].usage.completion_tokens == 12


def test_a_stream_with_echo_and_logprobs_adds_up_to_the_whole_answer(client, name):
    options = dict(model=name, prompt=PROMPT, max_tokens=10, temperature=0, echo=True,
                   logprobs=3)
    whole = client.completions.create(**options).choices[0]
    events = [e.choices[0] for e in client.completions.create(**options, stream=True)]
    assert "".join(e.text for e in events) == whole.text
    for field in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
        streamed = [x for e in events if e.logprobs for x in getattr(e.logprobs, field)]
        assert streamed == getattr(whole.logprobs, field), field


def test_echo_logprobs_are_gpt2s_in_float64(client, model, name, serve_checkpoint):
    ids = model.tokenizer.encode(PROMPT)
    done = client.completions.create(model=name, prompt=ids, max_tokens=3, temperature=0,
                                     echo=True, logprobs=5)
    choice = done.choices[0]
    lp = choice.logprobs
    assert choice.text.startswith(PROMPT)
    assert len(lp.tokens) == len(ids) + 3 and lp.token_logprobs[0] is None
    new_ids = model.generate_ids(ids, 3, temperature=0)
    exact = exact_logprobs(model, serve_checkpoint, ids + new_ids)
    all_ids = ids + new_ids
    expected = [exact[i - 1, all_ids[i]] for i in range(1, len(all_ids))]
    np.testing.assert_allclose(lp.token_logprobs[1:], expected, rtol=0, atol=2e-4)
    assert lp.top_logprobs[0] is None
    for i in range(1, len(all_ids)):
        top = lp.top_logprobs[i]
        best = np.argsort(-exact[i - 1])[:5]
        assert lp.tokens[i] in top and len(top) in (5, 6)
        np.testing.assert_allclose(sorted(top.values(), reverse=True)[:5], exact[i - 1, best],
                                   rtol=0, atol=2e-4)
    assert lp.text_offset[:3] == [0, len(model.tokenizer.decode(ids[:1])),
                                  len(model.tokenizer.decode(ids[:2]))]


def test_logprobs_0_still_give_the_chosen_token_and_the_argmax(client, model, name):
    ids = model.tokenizer.encode(PROMPT)
    done = client.completions.create(model=name, prompt=ids, max_tokens=0, echo=True,
                                     logprobs=0)
    lp = done.choices[0].logprobs
    assert done.choices[0].text == PROMPT and done.usage.completion_tokens == 0
    for i in range(1, len(ids)):
        top = lp.top_logprobs[i]
        assert lp.tokens[i] in top and 1 <= len(top) <= 2
        assert max(top.values()) >= lp.token_logprobs[i]


def test_stop_ends_the_text_before_the_stop_string(client, model, name):
    free = client.completions.create(model=name, prompt=PROMPT, max_tokens=20,
                                     temperature=0).choices[0].text
    stop = free[5:8]
    done = client.completions.create(model=name, prompt=PROMPT, max_tokens=20, temperature=0,
                                     stop=[stop, "never written"])
    assert done.choices[0].text == free[:free.index(stop)]
    assert done.choices[0].finish_reason == "stop"
    streamed = client.completions.create(model=name, prompt=PROMPT, max_tokens=20, temperature=0,
                                         stop=stop, stream=True)
    assert "".join(e.choices[0].text for e in streamed) == free[:free.index(stop)]


def test_the_same_seed_gives_the_same_text_as_the_library(client, model, name):
    def sample(seed):
        return client.completions.create(model=name, prompt=PROMPT, max_tokens=16,
                                         temperature=1.0, seed=seed,
                                         extra_body={"top_k": 50}).choices[0].text

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)
    assert sample(7) == model.generate(PROMPT, 16, temperature=1.0, seed=7, top_k=50)


def test_errors_reach_the_client_as_openai_errors(client, name):
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4", prompt="Hi")
    with pytest.raises(openai.BadRequestError, match="best_of"):
        client.completions.create(model=name, prompt="Hi", best_of=2)
    [listed] = client.models.list().data
    assert listed.id == name
