"""What a completion request computes over the model: the prompts' own log-probabilities (echo
scoring), the continuations, and the `logprobs` object OpenAI's legacy completions return.

A request becomes a `Plan` (checked before it is queued: every refusal is an APIError 400 then,
never in the middle of a stream), and a plan becomes `steps`: a generator of Pieces that asks
the worker for each next token's logits (worker.NextTokenLogits), so that the worker can compute
those of many requests in one forward, take turns between requests and stop a cancelled one
within one token.

Log-probabilities are the model's own (a float64 log-softmax of the raw logits, before any
temperature, top-k, top-p or repetition penalty), as vLLM returns them by default.
"""

from dataclasses import dataclass, field

import numpy as np

from gpt2numba.errors import ArgumentError
from gpt2numba.generate import Generation, TextStream
from gpt2numba.sampling import SamplingSettings, check_logits_finite
from gpt2numba.score import packs
from gpt2numba.serve.errors import APIError
from gpt2numba.serve.protocol import MAX_PROMPTS, MAX_REQUEST_TOKENS, MAX_STOP_STRINGS
from gpt2numba.serve.worker import NextTokenLogits

DEFAULT_MAX_TOKENS = 16   # OpenAI's default for the legacy completions
ROWS_PER_BLOCK = 32       # rows of logits widened to float64 at once: 32 x 50257 x 8 B = 13 MB


@dataclass
class PromptScores:
    """Echo scoring of one text of n token ids (the model's predictions at every position).

    logprobs: float64 [n - 1], log p of ids[1:], each given the ids before it;
    ranks: int64 [n - 1], 1 + the number of tokens the model found more likely than that one;
    top_ids: int64 [n, k], the k most likely next tokens after each position, most likely first;
    top_logprobs: float64 [n, k], their log-probabilities;
    last_logits: float32 [vocab], the logits after the last position (the first new token's).
    """

    logprobs: np.ndarray
    ranks: np.ndarray
    top_ids: np.ndarray
    top_logprobs: np.ndarray
    last_logits: np.ndarray


def score_prompts(model, id_lists, top=1) -> list[PromptScores]:
    """Echo scoring of each list of token ids in `id_lists` (each 1..n_positions ids in the
    vocabulary): all-rows forwards of as many texts as n_positions rows hold (packed:
    GPT2.packed_logits), then a float64 log-softmax of each text's logits [n, vocab],
    ROWS_PER_BLOCK rows at a time, so that memory stays bounded by one forward. `top` (>= 1)
    is how many of the most likely next tokens to keep per position. NonFiniteLogitsError if
    the model computes a NaN or infinite logit."""
    scores = [None] * len(id_lists)
    for group in packs([len(ids) for ids in id_lists], model.config.n_positions):
        members = [id_lists[k] for k in group]
        for k, logits in zip(group, model.packed_logits(members)):
            scores[k] = _score(logits, np.asarray(id_lists[k], dtype=np.int64), top)
    return scores


def _score(logits, ids, top) -> PromptScores:
    n = ids.size
    scores = PromptScores(np.empty(n - 1), np.empty(n - 1, dtype=np.int64),
                          np.empty((n, top), dtype=np.int64), np.empty((n, top)),
                          logits[-1].copy())
    for start in range(0, n, ROWS_PER_BLOCK):
        rows = logits[start:start + ROWS_PER_BLOCK].astype(np.float64)    # [r, vocab]
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            check_logits_finite(rows[np.argmin(finite)])
        peak = rows.max(axis=1)
        log_total = peak + np.log(np.exp(rows - peak[:, None]).sum(axis=1))     # [r]
        best = _top_indices(rows, top)                                          # [r, top]
        end = start + rows.shape[0]
        scores.top_ids[start:end] = best
        scores.top_logprobs[start:end] = np.take_along_axis(rows, best, 1) - log_total[:, None]
        targets = ids[start + 1:end + 1]            # the token each row predicts, if any
        m = targets.size
        chosen = rows[np.arange(m), targets]                                    # [m]
        scores.logprobs[start:start + m] = chosen - log_total[:m]
        scores.ranks[start:start + m] = 1 + (rows[:m] > chosen[:, None]).sum(axis=1)
    return scores


def _top_indices(rows, k):
    """The indices of the k largest values of each row of rows [r, vocab], largest first."""
    if k == 1:
        return rows.argmax(axis=1)[:, None]
    part = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(rows, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def token_text(tokenizer, token_id) -> str:
    """A token as the `logprobs` object names it: its text, or `bytes:\\xe2\\x80` for a token
    that is only part of a UTF-8 character (as OpenAI writes those)."""
    raw = tokenizer.decode_bytes([token_id])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{byte:02x}" for byte in raw)


@dataclass
class Plan:
    """A checked completion request: what to compute for each prompt."""

    prompts: list[list[int]]      # token ids of each prompt
    texts: list[str]              # each prompt's text (echoed)
    max_tokens: list[int]         # new tokens of each prompt at most
    sampling: SamplingSettings
    stop: list[str]
    echo: bool
    logprobs: int | None


@dataclass
class Piece:
    """A step's output: `text` of choice `index` and its tokens' logprob entries (each
    (token, logprob or None, top dict or None, text offset)); the last piece of a choice has a
    `finish_reason` ("length" or "stop") and `new_tokens`, its count of generated tokens."""

    index: int
    text: str
    entries: list = field(default_factory=list)
    finish_reason: str | None = None
    new_tokens: int = 0


def plan(model, request) -> Plan:
    """The Plan of a CompletionRequest; APIError 400 naming the field at fault (a prompt
    empty, too long or with ids outside the vocabulary, max_tokens beyond the context, a bad
    sampling setting)."""
    prompts, texts = _prompt_ids(model, request.prompt)
    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if len(stop) > MAX_STOP_STRINGS or "" in stop:
        raise APIError(400, f"stop must be at most {MAX_STOP_STRINGS} non-empty strings",
                       param="stop")
    try:
        sampling = SamplingSettings(temperature=request.temperature, top_k=max(request.top_k, 0),
                                    top_p=request.top_p,
                                    repetition_penalty=request.repetition_penalty,
                                    seed=request.seed)
    except ArgumentError as error:
        raise APIError(400, str(error), param=error.argument) from None
    return Plan(prompts, texts, [_max_tokens(model, request, ids) for ids in prompts], sampling,
                stop, request.echo, request.logprobs)


def _prompt_ids(model, prompt):
    """(token ids, text) of each prompt of a request's `prompt` in its four forms."""
    if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
        prompt = [prompt]
    if not prompt:
        raise APIError(400, "prompt is empty: send a text or token ids", param="prompt")
    if len(prompt) > MAX_PROMPTS:
        raise APIError(400, f"prompt holds {len(prompt)} prompts; send at most {MAX_PROMPTS} "
                            f"per request", param="prompt")
    tokenizer = model.tokenizer
    prompt = [well_formed(p) if isinstance(p, str) else p for p in prompt]
    ids = [tokenizer.encode(p, allow_special=True) if isinstance(p, str) else p for p in prompt]
    for one in ids:
        if not one:
            raise APIError(400, "a prompt is empty: send some text, or <|endoftext|> to "
                                "generate unconditionally", param="prompt")
        try:
            model.check_ids(one, "prompt")
        except ArgumentError as error:
            raise APIError(400, str(error), param="prompt") from None
    total = sum(len(one) for one in ids)
    if total > MAX_REQUEST_TOKENS:
        raise APIError(400, f"the prompts hold {total} tokens in all; send at most "
                            f"{MAX_REQUEST_TOKENS} per request", param="prompt")
    texts = [p if isinstance(p, str) else tokenizer.decode(i) for p, i in zip(prompt, ids)]
    return ids, texts


def well_formed(text) -> str:
    """`text` with each lone surrogate (JSON's "\\ud800" is one, and has no UTF-8) made U+FFFD,
    as the tokenizer reads it; surrogate pairs become their characters."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _max_tokens(model, request, ids) -> int:
    """New tokens for prompt `ids`: the request's max_tokens, or OpenAI's default of 16 where
    the context leaves that many. The k-th new token is predicted by a forward over the
    prompt and k - 1 new tokens, so n_positions + 1 - len(ids) tokens fit after a prompt."""
    room = model.config.n_positions + 1 - len(ids)
    if request.max_tokens is None:
        return min(DEFAULT_MAX_TOKENS, room)
    if request.max_tokens == 0 and not request.echo:
        raise APIError(400, "max_tokens is 0: nothing to generate; pass echo: true to score "
                            "the prompt, or max_tokens of at least 1", param="max_tokens")
    if request.max_tokens > room:
        raise APIError(400, f"max_tokens is {request.max_tokens}, but the model's context is "
                            f"{model.config.n_positions} tokens and the prompt has {len(ids)}: "
                            f"at most {room} new tokens fit; lower max_tokens",
                       param="max_tokens")
    return request.max_tokens


def steps(model, plan):
    """The Pieces of a Plan, a generator that yields a NextTokenLogits where it needs the
    logits of a next token and is sent them back (worker.py); the echo scoring of all its
    prompts runs at its start (score_prompts, its texts packed into shared forwards)."""
    scores = [None] * len(plan.prompts)
    if plan.echo and plan.logprobs is not None:
        scores = score_prompts(model, plan.prompts, max(plan.logprobs, 1))
    for index, ids in enumerate(plan.prompts):
        if plan.echo:
            entries = (None if scores[index] is None
                       else prompt_entries(model.tokenizer, ids, scores[index], plan.logprobs))
            yield Piece(index, plan.texts[index], entries or [])
        yield from _continuation(model, plan, index, scores[index])


def prompt_entries(tokenizer, ids, scores, logprobs):
    """The logprob entries of a prompt's tokens: the first has no logprob (nothing predicts
    it), each other its log-probability and the top `logprobs` predictions at its position,
    with itself and the most likely token always among them."""
    entries = []
    decoder = tokenizer.stream_decoder()
    offset = 0
    for i, token_id in enumerate(ids):
        if i == 0:
            entry = (token_text(tokenizer, token_id), None, None, offset)
        else:
            entry = (token_text(tokenizer, token_id), float(scores.logprobs[i - 1]),
                     top_dict(tokenizer, scores.top_ids[i - 1], scores.top_logprobs[i - 1],
                              logprobs, token_id, scores.logprobs[i - 1]),
                     offset)
        entries.append(entry)
        offset += len(decoder.push(token_id))
    return entries


def top_dict(tokenizer, top_ids, top_logprobs, k, chosen_id, chosen_logprob) -> dict:
    """{token: logprob} of the k most likely tokens (top_ids / top_logprobs [>= 1], most
    likely first), the most likely one and the chosen one, most likely first."""
    pairs = {int(i): float(lp) for i, lp in zip(top_ids[:max(k, 1)], top_logprobs[:max(k, 1)])}
    pairs[int(chosen_id)] = float(chosen_logprob)
    ordered = sorted(pairs.items(), key=lambda pair: -pair[1])
    return {token_text(tokenizer, i): lp for i, lp in ordered}


def token_entry(tokenizer, logits, token, k, offset):
    """The logprob entry of a generated token chosen from logits [vocab] float32, with the
    top `k` predictions, at text offset `offset`."""
    row = logits.astype(np.float64)[None]                                     # [1, vocab]
    log_total = float(row.max() + np.log(np.exp(row - row.max()).sum()))
    best = _top_indices(row, max(k, 1))[0]
    logprob = float(row[0, token]) - log_total
    top = top_dict(tokenizer, best, row[0, best] - log_total, k, token, logprob)
    return token_text(tokenizer, token), logprob, top, offset


def _continuation(model, plan, index, scores):
    """The Pieces of prompt `index`'s continuation, the last one with its finish_reason: a
    token at a time, each chosen from logits asked for with a NextTokenLogits (the first
    after an echo scoring from the scores' own); a piece of text as soon as it is safe to
    show (generate.TextStream), with the logprob entries of the tokens it completes."""
    ids, tokenizer = plan.prompts[index], model.tokenizer
    if plan.max_tokens[index] == 0:
        yield Piece(index, "", finish_reason="length")
        return
    s = plan.sampling
    generation = Generation(   # no next_logits: driven below through context() and choose()
        None, ids, n_positions=model.config.n_positions, eos_id=tokenizer.eos_id,
        max_new_tokens=plan.max_tokens[index], slide=True, temperature=s.temperature,
        top_k=s.top_k, top_p=s.top_p, repetition_penalty=s.repetition_penalty, seed=s.seed)
    stream = TextStream(generation, tokenizer, plan.stop)
    decoder, offset = tokenizer.stream_decoder(), len(plan.texts[index]) if plan.echo else 0
    logits, entries = None if scores is None else scores.last_logits, []
    while (context := generation.context()) is not None:
        if logits is None:
            logits = yield NextTokenLogits(context)
        token = generation.choose(logits)
        if token is None:
            break
        text = stream.push(token)
        if plan.logprobs is not None and not stream.stopped_at_string:
            entries.append(token_entry(tokenizer, logits, token, plan.logprobs, offset))
        offset += len(decoder.push(token))
        logits = None
        if text is not None:
            yield Piece(index, text, entries)
            entries = []
        if stream.stopped_at_string:
            break
    text = None if stream.stopped_at_string else stream.flush()
    if text is not None or entries:
        yield Piece(index, text or "", entries)
    reason = "length" if stream.stop_reason in ("length", "context") else "stop"
    new_tokens = len(stream.new_ids) - (1 if stream.stopped_at_string else 0)
    yield Piece(index, "", finish_reason=reason, new_tokens=new_tokens)
