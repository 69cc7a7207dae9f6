"""The responses of `POST /v1/completions` as OpenAI shapes them, built from the Pieces of
completions.steps: one JSON object, or server-sent events (`data: {...}`, one per piece)."""

import json
import time
import uuid


class Reply:
    """A completion's response, built from its Pieces: the whole JSON, or the stream's
    events."""

    def __init__(self, name, plan, request):
        self.id = f"cmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.name = name
        self.logprobs = request.logprobs is not None
        self.include_usage = bool(request.stream_options and request.stream_options.include_usage)
        self.prompt_tokens = sum(len(ids) for ids in plan.prompts)
        self.completion_tokens = 0
        self.choices = [{"index": i, "text": "", "logprobs": self._empty_logprobs(),
                         "finish_reason": None} for i in range(len(plan.prompts))]

    def _empty_logprobs(self):
        if not self.logprobs:
            return None
        return {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}

    def add(self, piece):
        """Add a piece to its choice."""
        choice = self.choices[piece.index]
        choice["text"] += piece.text
        if self.logprobs:
            _extend(choice["logprobs"], piece.entries)
        if piece.finish_reason is not None:
            choice["finish_reason"] = piece.finish_reason
            self.completion_tokens += piece.new_tokens

    def usage(self):
        """OpenAI's usage object."""
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}

    def body(self):
        """The whole response of a request that does not stream."""
        return {"id": self.id, "object": "text_completion", "created": self.created,
                "model": self.name, "choices": self.choices, "usage": self.usage()}

    def event(self, piece):
        """The server-sent event of one piece."""
        logprobs = None
        if self.logprobs:
            logprobs = self._empty_logprobs()
            _extend(logprobs, piece.entries)
        if piece.finish_reason is not None:
            self.completion_tokens += piece.new_tokens
        choice = {"index": piece.index, "text": piece.text, "logprobs": logprobs,
                  "finish_reason": piece.finish_reason}
        return sse({"id": self.id, "object": "text_completion", "created": self.created,
                          "model": self.name, "choices": [choice]})

    def usage_event(self):
        """The last event before [DONE] when stream_options.include_usage is set."""
        return sse({"id": self.id, "object": "text_completion", "created": self.created,
                    "model": self.name, "choices": [], "usage": self.usage()})


def _extend(logprobs, entries):
    for token, logprob, top, offset in entries:
        logprobs["tokens"].append(token)
        logprobs["token_logprobs"].append(logprob)
        logprobs["top_logprobs"].append(top)
        logprobs["text_offset"].append(offset)


def sse(data) -> str:
    """One server-sent event holding `data` as JSON."""
    return f"data: {json.dumps(data)}\n\n"
