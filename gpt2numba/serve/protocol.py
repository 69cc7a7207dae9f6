"""The requests the server takes, as pydantic models mirroring OpenAI's legacy completions
(with vLLM's extensions top_k and repetition_penalty), and their checks.

Every field is checked before the request is queued: a wrong type, a value out of range or a
parameter the server does not implement is an APIError 400 naming the field. Types are strict
(`"5"` is not 5, `true` is not 1), and a field OpenAI does not define is refused too, so that a
misspelt option is never silently ignored.
"""

import json

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError

from gpt2numba.serve.errors import APIError

MAX_LOGPROBS = 20        # top log-probabilities per position, as vLLM allows
MAX_PROMPTS = 128        # prompts in one request (a batch)
# Prompt tokens in one request: with logprobs 20, each is a dict of up to 22 entries in the
# response, so this bounds the memory a response takes (16 full contexts).
MAX_REQUEST_TOKENS = 16 * 1024
MAX_STOP_STRINGS = 16
Number = StrictFloat | StrictInt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StreamOptions(_Strict):
    """`stream_options`: whether the last event of a stream carries `usage`."""

    include_usage: StrictBool = False


class CompletionRequest(_Strict):
    """`POST /v1/completions`. Defaults are OpenAI's (temperature 1, 16 tokens)."""

    model: StrictStr
    prompt: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
    max_tokens: StrictInt | None = Field(default=None, ge=0)
    temperature: Number = Field(default=1.0, ge=0)
    top_p: Number = Field(default=1.0, gt=0, le=1)
    top_k: StrictInt = Field(default=0, ge=-1)         # 0 or -1: off (vLLM's -1)
    repetition_penalty: Number = Field(default=1.0, gt=0)
    seed: StrictInt | None = Field(default=None, ge=0, lt=2**63)
    stop: StrictStr | list[StrictStr] | None = None
    echo: StrictBool = False
    logprobs: StrictInt | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    user: StrictStr | None = None
    # OpenAI's parameters that this server does not implement: only their neutral values pass.
    n: StrictInt = 1
    best_of: StrictInt | None = None
    suffix: StrictStr | None = None
    presence_penalty: Number = 0.0
    frequency_penalty: Number = 0.0
    logit_bias: dict[StrictStr, Number] | None = None


NOT_IMPLEMENTED = {
    "n": lambda value: value == 1,
    "best_of": lambda value: value in (None, 1),
    "suffix": lambda value: value in (None, ""),
    "presence_penalty": lambda value: value == 0,
    "frequency_penalty": lambda value: value == 0,
    "logit_bias": lambda value: not value,
}


class TokenizeRequest(_Strict):
    """`POST /tokenize` (vLLM's): the text to tokenize."""

    model: StrictStr | None = None
    prompt: StrictStr
    add_special_tokens: StrictBool = True


class DetokenizeRequest(_Strict):
    """`POST /detokenize` (vLLM's): the ids to turn back into text."""

    model: StrictStr | None = None
    tokens: list[StrictInt]


def parse(model_class, body: bytes):
    """The request `model_class` from a JSON body; APIError 400 naming what is wrong."""
    try:
        data = json.loads(body)
    except ValueError as error:   # not UTF-8, not JSON, or an integer of over 4300 digits
        raise APIError(400, f"the request body is not valid JSON ({error}); send a JSON "
                            f"object") from None
    except RecursionError:
        raise APIError(400, "the request body's JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise APIError(400, f"the request body must be a JSON object, not "
                            f"{type(data).__name__}")
    try:
        request = model_class.model_validate(data)
    except PydanticValidationError as error:
        raise _first_problem(error) from None
    if isinstance(request, CompletionRequest):
        _refuse_what_is_not_implemented(request)
    return request


def _first_problem(error) -> APIError:
    """An APIError 400 for the first problem pydantic found, naming its field."""
    problem = error.errors(include_url=False)[0]
    field = str(problem["loc"][0]) if problem["loc"] else None
    where = ".".join(str(part) for part in problem["loc"]) or "the request"
    if problem["type"] == "extra_forbidden":
        return APIError(400, f"unrecognized request argument supplied: {field}", param=field)
    if problem["type"] == "missing":
        return APIError(400, f"{field} is required", param=field)
    return APIError(400, f"{where}: {problem['msg']}", param=field)


def _refuse_what_is_not_implemented(request):
    for name, neutral in NOT_IMPLEMENTED.items():
        value = getattr(request, name)
        if not neutral(value):
            raise APIError(400, f"{name}={value!r} is not supported by this server; leave "
                                f"{name} out", param=name)
