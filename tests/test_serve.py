"""`gpt2numba serve` against hostile clients, with an API key and a queue of 8: every refusal is
an OpenAI-shaped error with the status the issue names, nothing answers 500, and the server
still serves a normal request afterwards. Then SIGTERM: the request in flight finishes, exit 0.
"""

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from support.cli import cli_env
from support.serving import start_server

KEY = "test-key-1234"
QUEUE = 8


@pytest.fixture(scope="module")
def server(serve_checkpoint, home):
    server = start_server(serve_checkpoint, home, "--queue-size", QUEUE, "--threads", 1,
                          GPT2NUMBA_API_KEY=KEY)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=120,
                      headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


@pytest.fixture(scope="module")
def model_name(serve_checkpoint):
    return str(serve_checkpoint)


def assert_error(response, status, param=None, *words):
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["param"] == param, error
    for word in words:
        assert word in error["message"], error["message"]
    return error


def assert_still_serving(client, model_name):
    response = client.post("/v1/completions", json={"model": model_name, "prompt": "Hello",
                                                    "max_tokens": 3, "temperature": 0})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["finish_reason"] in ("length", "stop")


def test_health_and_the_page_need_no_key_and_the_api_does(server, model_name):
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    assert "<html" in httpx.get(server.url + "/").text.lower()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = httpx.post(server.url + "/v1/completions", headers=headers,
                              json={"model": model_name, "prompt": "Hi"})
        assert_error(response, 401, None, "Bearer")
        assert_error(httpx.get(server.url + "/v1/models", headers=headers), 401)


def test_models_lists_the_model_with_its_context(client, model_name):
    [model] = client.get("/v1/models").json()["data"]
    assert model["id"] == model_name and model["max_model_len"] == 1024


@pytest.mark.parametrize("body", [b"{", b"not json", b"\xff\xfe", b"[1, 2]", b"",
                                  b'{"model": "x", "prompt": ' + b"[" * 100_000 + b"]" * 100_000
                                  + b"}", b'{"prompt": 1' + b"0" * 5000 + b"}"])
def test_malformed_json_is_a_400(client, body, model_name):
    response = client.post("/v1/completions", content=body,
                           headers={"Content-Type": "application/json"})
    assert_error(response, 400)


@pytest.mark.parametrize("field, value", [
    ("prompt", 5), ("prompt", None), ("prompt", [1, "a"]), ("prompt", [[1], ["a"]]),
    ("prompt", [True]), ("max_tokens", "5"), ("max_tokens", 2.5), ("max_tokens", -1),
    ("temperature", "hot"), ("temperature", True), ("temperature", -1), ("top_p", 0),
    ("top_p", 1.5), ("top_k", -2), ("seed", -1), ("seed", "x"), ("stop", 3), ("stop", [""]),
    ("echo", "yes"), ("logprobs", -1), ("logprobs", 21), ("logprobs", 1000),
    ("repetition_penalty", 0), ("stream", 1), ("max_tokens", 10**9), ("prompt", []),
    ("prompt", ""), ("prompt", [[]]), ("max_tokens", 0),
])
def test_a_bad_value_is_a_400_naming_its_field(client, model_name, field, value):
    body = {"model": model_name, "prompt": "Hello", "max_tokens": 2, field: value}
    assert_error(client.post("/v1/completions", json=body), 400, field)


@pytest.mark.parametrize("field, value", [
    ("n", 2), ("best_of", 3), ("suffix", "end"), ("presence_penalty", 0.5),
    ("frequency_penalty", 1), ("logit_bias", {"50256": -100}), ("max_new_tokens", 5),
])
def test_what_is_not_implemented_is_a_400_naming_it(client, model_name, field, value):
    body = {"model": model_name, "prompt": "Hello", "max_tokens": 2, field: value}
    assert_error(client.post("/v1/completions", json=body), 400, field, field)


def test_neutral_values_of_the_unimplemented_parameters_pass(client, model_name):
    body = {"model": model_name, "prompt": "Hello", "max_tokens": 2, "n": 1, "best_of": 1,
            "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {}, "user": "me"}
    assert client.post("/v1/completions", json=body).status_code == 200


def test_a_prompt_of_1025_tokens_and_ids_outside_the_vocabulary_are_400s(client, model_name):
    for prompt in ([464] * 1025, "a" * 5000, [[464] * 1025]):
        assert_error(client.post("/v1/completions", json={"model": model_name, "prompt": prompt}),
                     400, "prompt", "1024")
    for prompt in ([50257], [-1], [[1, 2], [3, 10**30]]):
        assert_error(client.post("/v1/completions", json={"model": model_name, "prompt": prompt}),
                     400, "prompt")
    assert_error(client.post("/detokenize", json={"tokens": [50257]}), 400, "tokens")


def test_the_context_bounds_max_tokens(client, model_name):
    # the k-th new token is predicted from the prompt and k - 1 new ones: 1024 positions
    body = {"model": model_name, "prompt": [464] * 1000, "max_tokens": 26, "temperature": 0}
    assert_error(client.post("/v1/completions", json=body), 400, "max_tokens", "25")
    response = client.post("/v1/completions", json={**body, "max_tokens": 25})
    assert response.status_code == 200 and response.json()["usage"]["completion_tokens"] <= 25
    echo = {"model": model_name, "prompt": [464] * 1024, "max_tokens": 1, "echo": True,
            "logprobs": 1, "temperature": 0}   # lm-eval's request at the full context
    logprobs = client.post("/v1/completions", json=echo).json()["choices"][0]["logprobs"]
    assert len(logprobs["token_logprobs"]) in (1024, 1025)


def test_a_batch_is_bounded_in_prompts_and_tokens(client, model_name):
    for prompt in (["a"] * 129, [[464] * 1000] * 17):
        assert_error(client.post("/v1/completions", json={"model": model_name, "prompt": prompt,
                                                          "max_tokens": 1}), 400, "prompt")


def test_a_short_request_is_not_kept_waiting_by_a_long_generation(server, client, model_name):
    """The worker takes turns between requests, a step each: a one-token request sent while a
    300-token generation streams is answered long before that generation ends."""
    body = {"model": model_name, "prompt": "Once", "max_tokens": 300, "temperature": 0,
            "stream": True}
    arrived, started = [], threading.Event()

    def read_the_long_stream():   # each event's time of arrival, as it arrives
        with httpx.Client(base_url=server.url, timeout=120,
                          headers={"Authorization": f"Bearer {KEY}"}) as own:
            with own.stream("POST", "/v1/completions", json=body) as response:
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        arrived.append(time.perf_counter())
                        started.set()

    reader = threading.Thread(target=read_the_long_stream)
    reader.start()
    assert started.wait(60)
    short = client.post("/v1/completions", json={"model": model_name, "prompt": "Hi",
                                                 "max_tokens": 1})
    answered = time.perf_counter()
    reader.join()
    assert short.status_code == 200
    after = sum(when > answered for when in arrived)
    assert after > 150, (after, len(arrived))   # most of the 300 come after it


ODD_VALUES = ["null", "[]", "{}", '""', "1e308", "-1e308", "NaN", "Infinity", "-0.0",
              "1" + "0" * 400, "[[[1]]]", "true", '"\\u0000"', "0.5", "-1"]
FIELDS = ["prompt", "max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed",
          "stop", "echo", "logprobs", "stream", "stream_options", "user", "n", "best_of",
          "suffix", "presence_penalty", "frequency_penalty", "logit_bias", "model"]


@pytest.mark.parametrize("field", FIELDS)
def test_odd_values_of_every_field_are_answered_200_or_400(client, model_name, field):
    for value in ODD_VALUES:
        base = {"model": json.dumps(model_name), "prompt": '"Hi"', "max_tokens": "2"}
        body = "{" + ", ".join(f'"{k}": {v}' for k, v in {**base, field: value}.items()) + "}"
        response = client.post("/v1/completions", content=body,
                               headers={"Content-Type": "application/json"})
        assert response.status_code in (200, 400, 404), (field, value, response.text)
        if response.status_code != 200:
            assert_error(response, response.status_code, response.json()["error"]["param"])


def test_lone_surrogates_in_the_json_are_answered_not_a_500(client, model_name):
    for body in ({"model": model_name, "prompt": "a\ud800b", "echo": True, "max_tokens": 2,
                  "logprobs": 1, "stop": "\udfff"},
                 {"model": model_name, "prompt": ["\udc00"], "echo": True, "max_tokens": 0},
                 {"model": "\ud800", "prompt": "Hi"}):
        response = client.post("/v1/completions", content=json.dumps(body),
                               headers={"Content-Type": "application/json"})
        assert response.status_code in (200, 404), response.text
    response = client.post("/tokenize", content=json.dumps({"prompt": "\ud800"}))
    assert response.json()["tokens"] == [4210]   # U+FFFD, as the tokenizer reads a lone one


def test_an_unknown_model_is_a_404(client):
    assert_error(client.post("/v1/completions", json={"model": "gpt-4", "prompt": "Hi"}), 404,
                 "model", "gpt-4")


def test_unknown_routes_and_methods_are_openai_errors(client):
    assert_error(client.get("/v1/chat/nothing"), 404)
    assert_error(client.get("/v1/completions"), 405)


def test_a_2_mb_body_is_a_413_with_or_without_its_length(client, model_name):
    body = json.dumps({"model": model_name, "prompt": "a" * 2_000_000}).encode()
    assert_error(client.post("/v1/completions", content=body,
                             headers={"Content-Type": "application/json"}), 413)

    def chunks():   # no Content-Length: chunked transfer, refused once it passes 1 MiB
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    assert_error(client.post("/v1/completions", content=chunks(),
                             headers={"Content-Type": "application/json"}), 413)
    assert_still_serving(client, model_name)


def test_a_413_comes_before_the_body_is_sent(server, model_name):
    """The limit is checked on Content-Length: the answer comes while 100 MB are announced and
    none is sent."""
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), 10) as raw:
        raw.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/json\r\nAuthorization: Bearer " + KEY.encode()
                    + b"\r\nContent-Length: 100000000\r\n\r\n")
        raw.settimeout(10)
        answer = raw.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413"), answer


def test_a_stream_closed_after_one_event_stops_its_generation(server, client, model_name):
    body = {"model": model_name, "prompt": "Once", "max_tokens": 1000, "temperature": 0}
    start = time.perf_counter()
    assert client.post("/v1/completions", json={**body, "max_tokens": 200}).status_code == 200
    two_hundred_tokens = time.perf_counter() - start
    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as response:
        assert response.status_code == 200
        next(response.iter_lines())
    # the 1000 tokens would take several times as long as 200: the job must end well before
    start = time.perf_counter()
    while client.get("/health").json()["requests"] and time.perf_counter() - start < 60:
        time.sleep(0.02)
    assert time.perf_counter() - start < two_hundred_tokens, two_hundred_tokens
    assert_still_serving(client, model_name)


def test_50_requests_at_once_against_a_queue_of_8(server, client, model_name):
    body = {"model": model_name, "prompt": "The", "max_tokens": 20, "temperature": 0}
    answers = [None] * 50

    def send(i):
        with httpx.Client(base_url=server.url, timeout=120,
                          headers={"Authorization": f"Bearer {KEY}"}) as own:
            answers[i] = own.post("/v1/completions", json=body)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 429} and statuses.count(200) >= QUEUE, statuses
    assert 429 in statuses
    for answer in answers:
        if answer.status_code == 429:
            assert_error(answer, 429)
            assert int(answer.headers["Retry-After"]) >= 1
    texts = {answer.json()["choices"][0]["text"] for answer in answers if answer.status_code == 200}
    assert len(texts) == 1   # greedy: every answer under load is the same
    assert_still_serving(client, model_name)


def test_tokenize_detokenize_and_tokenizer_info_as_lm_eval_probes_them(client):
    info = client.get("/tokenizer_info").json()
    assert info["eos_token"] == "<|endoftext|>"
    ids = client.post("/tokenize", json={"prompt": "Hello world<|endoftext|>",
                                         "add_special_tokens": False}).json()["tokens"]
    assert ids == [15496, 995, 50256]   # GPT-2's own ids of these words
    assert client.post("/detokenize", json={"tokens": ids}).json()["prompt"] == (
        "Hello world<|endoftext|>")


def test_without_the_serve_extra_the_command_says_what_to_install(home):
    hide = ("import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None; "
            "sys.argv = ['gpt2numba', 'serve']; from gpt2numba.__main__ import main; main()")
    done = subprocess.run([sys.executable, "-c", hide], env=cli_env(home), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["gpt2numba: error: gpt2numba serve needs FastAPI and "
                                        "uvicorn, which are not installed: pip install "
                                        "'gpt2numba[serve]'"]


def test_another_host_than_loopback_without_a_key_is_warned_about(home, tmp_path):
    """The warning comes once the port is bound (not listening yet), before the model loads:
    here a missing folder ends the command right after it."""
    done = subprocess.run([sys.executable, "-m", "gpt2numba", "serve", "--host", "0.0.0.0",
                           "--port", "0", "-m", str(tmp_path / "missing")],
                          env=cli_env(home), capture_output=True, text=True, timeout=120)
    warning, error = done.stderr.splitlines()
    assert "without --api-key: anyone who can reach this port can use the model" in warning
    assert error.startswith("gpt2numba: error: ") and done.returncode == 1


def test_ctrl_c_stops_the_server_with_status_0(serve_checkpoint, home):
    other = start_server(serve_checkpoint, home)
    other.process.send_signal(signal.SIGINT)
    assert other.wait_for_exit(60) == 0, "".join(other.stderr)
    assert other.stderr[-1] == "gpt2numba: stopped\n"


def test_sigterm_finishes_the_request_in_flight_and_exits_0(server, model_name):
    """Last in this module: it stops the module's server."""
    body = {"model": model_name, "prompt": "Once", "max_tokens": 300, "temperature": 0,
            "stream": True}
    events = []
    with httpx.Client(base_url=server.url, timeout=120,
                      headers={"Authorization": f"Bearer {KEY}"}) as own:
        with own.stream("POST", "/v1/completions", json=body) as response:
            lines = response.iter_lines()
            events.append(next(lines))
            server.process.send_signal(15)
            events.extend(line for line in lines if line)
    assert events[-1] == "data: [DONE]"
    finished = json.loads(events[-2].removeprefix("data: "))["choices"][0]["finish_reason"]
    assert finished in ("length", "stop")
    assert server.wait_for_exit(60) == 0, "".join(server.stderr)
    assert "Traceback" not in "".join(server.stderr)
