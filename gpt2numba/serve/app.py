"""The HTTP face: OpenAI's legacy completions and vLLM's tokenizer endpoints on FastAPI, over
one model and one worker thread (worker.py), and the page at `/`.

Every answer that is not a success is an OpenAI-shaped error (errors.py). Request bodies are
read up to MAX_BODY_BYTES and refused beyond, without reading the rest; parsing and
tokenizing run in a thread of their own, the model only in the worker.
"""

import asyncio
import hmac
import json
import time
from contextlib import asynccontextmanager
from importlib import resources

import numpy as np
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, StreamingResponse

from gpt2numba.sampling import NonFiniteLogitsError
from gpt2numba.serve import completions, protocol
from gpt2numba.serve.errors import APIError
from gpt2numba.serve.responses import Reply, sse
from gpt2numba.serve.worker import FINISHED, QueueFull, Worker

MAX_BODY_BYTES = 2**20
RETRY_AFTER_SECONDS = 1


def create_app(model, name, *, api_key=None, queue_size=8, grace_seconds=30) -> FastAPI:
    """The ASGI app serving `model` as `name`; with `api_key`, every API route needs it as a
    Bearer token. At most `queue_size` requests wait or run at once (429 beyond). At shutdown
    the worker finishes what it has, waiting up to `grace_seconds`."""
    worker = Worker(queue_size, model.packed_next_token_logits, model.config.n_positions)

    @asynccontextmanager
    async def lifespan(app):
        worker.start()
        yield
        await run_in_threadpool(worker.stop, grace_seconds)

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serving = Serving(model, name, worker, api_key)
    app.add_exception_handler(APIError, lambda request, error: error.response())
    app.add_exception_handler(HTTPException, _http_error)
    _add_routes(app)
    return app


class Serving:
    """What the routes share: the model, its name, the worker and the key."""

    def __init__(self, model, name, worker, api_key):
        self.model = model
        self.name = name
        self.worker = worker
        self.api_key = api_key.encode() if api_key else None
        self.created = int(time.time())

    def check_key(self, request):
        """APIError 401 unless the request carries the key (when one is set), compared in
        constant time."""
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if not (scheme.lower() == "bearer"
                and hmac.compare_digest(token.strip().encode(errors="replace"), self.api_key)):
            raise APIError(401, "a valid API key is required: send it as `Authorization: "
                                "Bearer KEY`", code="invalid_api_key")

    def check_model(self, name):
        """APIError 404 unless `name` (None: the default) is the model served."""
        if name is not None and name != self.name:
            raise APIError(404, f"the model {name!r} does not exist here; this server serves "
                                f"{self.name!r} (GET /v1/models)", param="model",
                           code="model_not_found")


def _http_error(request, error):
    """Starlette's own errors (unknown route, wrong method) in OpenAI's shape."""
    messages = {404: f"no route {request.url.path}: see /v1/completions, /v1/models, /health",
                405: f"{request.method} is not allowed on {request.url.path}"}
    return APIError(error.status_code, messages.get(error.status_code, str(error.detail)),
                    headers=getattr(error, "headers", None)).response()


async def read_body(request) -> bytes:
    """The request's body; APIError 413 as soon as it passes MAX_BODY_BYTES (or says it will),
    without reading the rest."""
    too_large = APIError(413, f"the request body is larger than {MAX_BODY_BYTES // 2**20} MiB; "
                              f"send less (split a batch of prompts into several requests)")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def parsed(request, model_class):
    """The body of `request` parsed as `model_class` (protocol.parse), in a thread."""
    return await run_in_threadpool(protocol.parse, model_class, await read_body(request))


def _add_routes(app):
    for path, endpoint in (("/", page), ("/health", health), ("/v1/models", models),
                           ("/tokenizer_info", tokenizer_info)):
        app.add_api_route(path, endpoint, methods=["GET"])
    for path, endpoint in (("/v1/completions", complete), ("/tokenize", tokenize),
                           ("/detokenize", detokenize), ("/token_ranks", token_ranks)):
        app.add_api_route(path, endpoint, methods=["POST"])


async def page():
    """The page to try the model (page.html, one file with its script)."""
    return HTMLResponse(resources.files("gpt2numba.serve").joinpath("page.html").read_text())


async def health(request: Request):
    """Ready (the server answers only once the model is loaded and compiled), and how many
    requests are waiting or running."""
    return {"status": "ok", "requests": request.app.state.serving.worker.jobs}


async def models(request: Request):
    """OpenAI's model list: the one model served."""
    serving = _serving(request)
    return {"object": "list", "data": [{
        "id": serving.name, "object": "model", "created": serving.created,
        "owned_by": "gpt2numba", "max_model_len": serving.model.config.n_positions}]}


async def complete(request: Request):
    """OpenAI's legacy completions, streamed as server-sent events or as one JSON."""
    serving = _serving(request)
    completion = await parsed(request, protocol.CompletionRequest)
    serving.check_model(completion.model)
    plan = await run_in_threadpool(completions.plan, serving.model, completion)
    results, job = _submit(serving, completions.steps(serving.model, plan))
    reply = Reply(serving.name, plan, completion)
    if completion.stream:
        return StreamingResponse(_events(reply, results, job), media_type="text/event-stream")
    try:
        async for piece in _pieces(results, job):
            reply.add(piece)
    except Exception as error:
        raise _failure(error) from None
    return reply.body()


async def tokenize(request: Request):
    """vLLM's /tokenize: the ids of a text (<|endoftext|> is the special token)."""
    serving = _serving(request)
    body = await parsed(request, protocol.TokenizeRequest)
    serving.check_model(body.model)
    ids = await run_in_threadpool(serving.model.tokenizer.encode, body.prompt, True)
    return {"count": len(ids), "max_model_len": serving.model.config.n_positions,
            "tokens": ids}


async def detokenize(request: Request):
    """vLLM's /detokenize: the text of token ids."""
    serving = _serving(request)
    body = await parsed(request, protocol.DetokenizeRequest)
    serving.check_model(body.model)
    try:
        text = serving.model.tokenizer.decode(body.tokens)
    except ValueError as error:
        raise APIError(400, str(error), param="tokens") from None
    return {"prompt": text}


async def tokenizer_info(request: Request):
    """vLLM's /tokenizer_info: what a client needs to tokenize as the server does."""
    serving = _serving(request)
    tokenizer = serving.model.tokenizer
    return {"tokenizer_class": "GPT2Tokenizer", "eos_token": tokenizer.eos_token,
            "eos_token_id": tokenizer.eos_id, "bos_token": tokenizer.eos_token,
            "bos_token_id": tokenizer.eos_id, "pad_token": None,
            "vocab_size": tokenizer.vocab_size,
            "model_max_length": serving.model.config.n_positions}


async def token_ranks(request: Request):
    """The page's view of a text: its tokens, and for each the rank of that token among the
    model's predictions and its probability (None for the first, which nothing predicts)."""
    serving = _serving(request)
    body = await parsed(request, protocol.TokenizeRequest)
    serving.check_model(body.model)
    completion = protocol.CompletionRequest(model=serving.name, prompt=body.prompt, echo=True,
                                            max_tokens=0, logprobs=0)
    plan = await run_in_threadpool(completions.plan, serving.model, completion)

    def scoring():
        yield completions.score_prompts(serving.model, plan.prompts)[0]

    results, job = _submit(serving, scoring())
    try:
        [scores] = [value async for value in _pieces(results, job)]
    except Exception as error:
        raise _failure(error) from None
    tokenizer = serving.model.tokenizer
    return {"tokens": [tokenizer.decode([i]) for i in plan.prompts[0]],
            "ranks": [None, *scores.ranks.tolist()],
            "probs": [None, *np.exp(scores.logprobs).tolist()]}


def _serving(request) -> Serving:
    """The app's Serving, once the request has passed its key check."""
    serving = request.app.state.serving
    serving.check_key(request)
    return serving


def _submit(serving, steps):
    """Queue a job of `steps` (a generator: see worker.py) on the worker; returns (an asyncio
    queue of its results, the job). APIError 429 when the queue is full."""
    loop = asyncio.get_running_loop()
    results = asyncio.Queue()

    def deliver(value):
        loop.call_soon_threadsafe(results.put_nowait, value)

    try:
        job = serving.worker.submit(steps, deliver)
    except QueueFull:
        raise APIError(429, f"the server is busy: {serving.worker.capacity} requests are "
                            f"queued; retry in a moment", code="queue_full",
                       headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    return results, job


async def _pieces(results, job):
    """The values the job delivers, until it ends; its exception is raised here. The job is
    cancelled if the caller stops listening (a client that went away)."""
    try:
        while True:
            value = await results.get()
            if value is FINISHED:
                return
            if isinstance(value, BaseException):
                raise value
            yield value
    finally:
        job.cancel()


def _failure(error) -> APIError:
    """The APIError of an exception a job raised."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, NonFiniteLogitsError):
        return APIError(422, str(error), code="non_finite_logits")
    raise error


async def _events(reply, results, job):
    """The stream of a completion: one event per piece, an error event if it fails, then
    `data: [DONE]`. A client that disconnects cancels the job (_pieces)."""
    try:
        async for piece in _pieces(results, job):
            yield reply.event(piece)
        if reply.include_usage:
            yield reply.usage_event()
    except Exception as error:
        failure = _failure(error)
        yield sse(json.loads(failure.response().body))
    yield "data: [DONE]\n\n"
