"""The server's concurrent generations share forwards: the worker computes the next token of
every generating request in one packed forward (each text at positions from 0, attending to
its own tokens, the head on its last row only), at most n_positions rows a forward.

The app runs in this process (httpx's ASGI transport); its worker starts once every request is
queued, so that the requests are concurrent whatever the machine's speed. Forwards are counted
at the seam every forward passes through (runtime.running). The answers are compared with the
same app's answers to the requests sent one at a time, and with the library's generation.
"""

import asyncio
import json

import httpx
import numpy as np
import pytest

from gpt2numba import GPT2, runtime
from gpt2numba.errors import ArgumentError
from gpt2numba.serve import completions, protocol
from gpt2numba.serve.app import create_app
from gpt2numba.serve.worker import FINISHED, Cancelled, NextTokenLogits, Worker
from gpt2numba.weights import load_tensors
from support import reference
from support.checkpoints import make_checkpoint

PROMPTS = ["The quick brown fox", "Hello", "Once upon a time there was", "1 2 3", "A",
           "In the beginning", "What is", "Numba compiles Python"]


@pytest.fixture(scope="module")
def small_init_model(tmp_path_factory):
    """The tiny GPT-2 at GPT-2's own initialisation scale (0.02): near-tied logits, where a
    rounding difference between packed and unpacked forwards would show as another token."""
    return GPT2.from_pretrained(make_checkpoint(tmp_path_factory.mktemp("init-0.02"),
                                                initializer_range=0.02))


@pytest.fixture
def forwards(monkeypatch):
    """How many forwards the model ran (a list of one count), counted at runtime.running."""
    count = [0]
    real = runtime.running

    def counted(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(runtime, "running", counted)
    return count


def answers(model, bodies, *, together):
    """The JSON answers of the completion requests `bodies` to a fresh app of `model`: all
    queued before its worker starts (together), or each sent after the one before is
    answered."""
    app = create_app(model, "tiny", queue_size=len(bodies))
    worker = app.state.serving.worker

    async def send_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tiny") as client:
            if not together:
                worker.start()
                return [await client.post("/v1/completions", json=body) for body in bodies]
            sent = [asyncio.create_task(client.post("/v1/completions", json=body))
                    for body in bodies]
            while worker.jobs < len(bodies):
                await asyncio.sleep(0.005)
            worker.start()
            return await asyncio.gather(*sent)

    try:
        replies = asyncio.run(send_all())
    finally:
        worker.stop(60)
    assert all(reply.status_code == 200 for reply in replies), [r.text for r in replies]
    return [choices(reply) for reply in replies]


def choices(reply):
    """The choices of a completion, or of a stream's events joined into one per index."""
    if not reply.headers["content-type"].startswith("text/event-stream"):
        return reply.json()["choices"]
    joined = {}
    for line in reply.text.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line.removeprefix("data: "))["choices"]:
                seen = joined.setdefault(choice["index"], {**choice, "text": ""})
                seen["text"] += choice["text"]
                seen["finish_reason"] = choice["finish_reason"]
    return [joined[index] for index in sorted(joined)]


def completion(prompt, **fields):
    return {"model": "tiny", "prompt": prompt, "max_tokens": 8, "temperature": 0, **fields}


@pytest.mark.parametrize("model_name", ["tiny_model", "small_init_model"])
def test_concurrent_greedy_requests_share_forwards_and_answer_as_alone(request, model_name,
                                                                       forwards):
    model = request.getfixturevalue(model_name)
    bodies = [completion(prompt) for prompt in PROMPTS]
    together = answers(model, bodies, together=True)
    # 8 requests of 8 tokens: one at a time that is 64 forwards; packed, one per token
    assert forwards[0] == 8, forwards[0]
    forwards[0] = 0
    assert together == answers(model, bodies, together=False)
    assert forwards[0] == 64
    library = [model.tokenizer.decode(model.generate_ids(model.tokenizer.encode(prompt), 8,
                                                         temperature=0)) for prompt in PROMPTS]
    assert [choice["text"] for [choice] in together] == library


def test_packed_last_rows_are_each_texts_next_token_logits(tiny_checkpoint, tiny_model):
    """Each row against the text's last row in plain float64 NumPy (tests/support/reference.py)
    and against next_token_logits alone, both within 1e-5 of the logits' largest magnitude
    (test_blocks.py's tolerance). Not bit-identical to the lone forward (seen: about 1e-6 of
    it): `linear` picks its tiles and row blocks by the number of rows, and a lone text's last
    block computes its last row only, so float32 sums round in another order."""
    tensors = load_tensors(tiny_checkpoint, tiny_model.config)
    rng = np.random.default_rng(26)
    for lengths in ([3, 5], [1] * 8, [20, 30, 40, 30], [128]):
        id_lists = [rng.integers(0, 50257, n).tolist() for n in lengths]
        packed = tiny_model.packed_next_token_logits(id_lists)
        exact = np.stack([reference.gpt2(np.asarray(ids), tensors, tiny_model.config)[-1]
                          for ids in id_lists])
        alone = np.stack([tiny_model.next_token_logits(ids) for ids in id_lists])
        assert packed.shape == (len(lengths), 50257) and packed.dtype == np.float32
        np.testing.assert_allclose(packed, exact, rtol=0, atol=1e-5 * np.abs(exact).max())
        np.testing.assert_allclose(packed, alone, rtol=0, atol=1e-5 * np.abs(alone).max())
    with pytest.raises(ArgumentError, match="id_lists.*128"):
        tiny_model.packed_next_token_logits([[1] * 100, [2] * 29])


def test_seeds_stop_strings_and_logprobs_under_packing(tiny_model, forwards):
    greedy = answers(tiny_model, [completion(PROMPTS[0], max_tokens=12)], together=False)
    stop = greedy[0][0]["text"][5:8]   # a stop string the greedy text reaches
    bodies = [completion(PROMPTS[0], max_tokens=12, stop=[stop], logprobs=2),
              completion(PROMPTS[1], temperature=1.0, seed=7, logprobs=1),
              completion(PROMPTS[2], temperature=0.8, top_k=40, seed=11),
              completion([PROMPTS[3], PROMPTS[4]], echo=True, logprobs=1),
              completion(PROMPTS[5], temperature=1.0, seed=7, stream=True)]
    forwards[0] = 0
    together = answers(tiny_model, bodies, together=True)
    packed_forwards = forwards[0]
    alone = answers(tiny_model, bodies, together=False)
    assert packed_forwards < forwards[0] - packed_forwards
    assert together[0][0]["finish_reason"] == "stop" and stop not in together[0][0]["text"]
    for shared, own in zip(together, alone):
        for a, b in zip(shared, own):
            assert a["text"] == b["text"] and a["finish_reason"] == b["finish_reason"]
            if a["logprobs"] is not None:
                assert a["logprobs"]["tokens"] == b["logprobs"]["tokens"]
                assert a["logprobs"]["text_offset"] == b["logprobs"]["text_offset"]
                np.testing.assert_allclose(
                    [lp or 0 for lp in a["logprobs"]["token_logprobs"]],
                    [lp or 0 for lp in b["logprobs"]["token_logprobs"]], atol=1e-4)


class Results:
    """What a worker's job delivered: `values`, and `end` (FINISHED or the exception)."""

    def __init__(self):
        self.values, self.end = [], None

    def __call__(self, value):
        if value is FINISHED or isinstance(value, BaseException):
            self.end = value
        else:
            self.values.append(value)

    def text(self):
        return "".join(piece.text for piece in self.values)


def plan_of(model, prompt, max_tokens):
    request = protocol.CompletionRequest(model="tiny", prompt=prompt, max_tokens=max_tokens,
                                         temperature=0)
    return completions.plan(model, request)


def recording_worker(model, rows=None):
    """A Worker of `model` (not started) whose forwards' asks are kept in `worker.asked`."""
    worker = Worker(16, None, rows or model.config.n_positions)
    worker.asked = []

    def next_token_logits(id_lists):
        worker.asked.append([list(ids) for ids in id_lists])
        return model.packed_next_token_logits(id_lists)

    worker.next_token_logits = next_token_logits
    return worker


def test_a_round_holds_at_most_n_positions_rows_and_no_job_starves(tiny_model):
    """Four prompts of 50 tokens: two fit in 128 rows, so the forwards take turns between the
    pairs; every job ends with the library's greedy text, though the worker was told to stop
    right after it started (it finishes the jobs in hand)."""
    prompts = [[(17 * k + i) % 50000 for i in range(50)] for k in range(4)]
    worker = recording_worker(tiny_model)
    results = [Results() for _ in prompts]
    for prompt, result in zip(prompts, results):
        worker.submit(completions.steps(tiny_model, plan_of(tiny_model, prompt, 6)), result)
    worker.start()
    worker.stop(60)
    assert all(sum(map(len, asks)) <= 128 for asks in worker.asked)
    served = [[prompts.index(ids[:50]) for ids in asks] for asks in worker.asked]
    assert served == [[0, 1], [2, 3]] * 6   # round robin: the pairs take turns
    for prompt, result in zip(prompts, results):
        assert result.end is FINISHED
        expected = tiny_model.generate_ids(prompt, 6, temperature=0)
        assert result.text() == tiny_model.tokenizer.decode(expected)


def test_a_cancelled_job_leaves_before_the_next_forward_and_a_failing_one_alone(tiny_model):
    prompts = [PROMPTS[0], PROMPTS[2], PROMPTS[6]]
    worker = recording_worker(tiny_model)
    results = [Results() for _ in prompts]
    jobs = [worker.submit(completions.steps(tiny_model, plan_of(tiny_model, p, 10)), r)
            for p, r in zip(prompts, results)]
    cancelled_at = []

    def cancel_after_one_piece(value):   # the client of prompts[1] goes away
        results[1](value)
        if len(results[1].values) == 1:
            jobs[1].cancel()
            cancelled_at.append(len(worker.asked))

    jobs[1].deliver = cancel_after_one_piece

    def out_of_vocabulary():
        yield NextTokenLogits([5, 50257])

    def failing_after_a_token():
        yield NextTokenLogits([5, 6])
        raise RuntimeError("this request's own failure")

    failures = [Results(), Results()]
    worker.submit(out_of_vocabulary(), failures[0])
    worker.submit(failing_after_a_token(), failures[1])
    worker.start()
    worker.stop(60)
    assert isinstance(results[1].end, Cancelled)
    tokens_of_1 = len(tiny_model.tokenizer.encode(prompts[1]))
    later = [ids for asks in worker.asked[cancelled_at[0]:] for ids in asks]
    assert all(ids[:tokens_of_1] != tiny_model.tokenizer.encode(prompts[1]) for ids in later)
    assert isinstance(failures[0].end, ArgumentError)
    assert isinstance(failures[1].end, RuntimeError)
    for k in (0, 2):
        ids = tiny_model.tokenizer.encode(prompts[k])
        assert results[k].end is FINISHED
        assert results[k].text() == tiny_model.tokenizer.decode(
            tiny_model.generate_ids(ids, 10, temperature=0))
