"""The decoding loop, below the model: it needs only a next-logits function, the context length
(n_positions) and the end-of-text id. One forward of the whole sequence per new token (no KV
cache, as GPT-2's original sampling code), the next token chosen from the last position's logits.

`Generation` yields token ids and records why it stopped and how long it took; `TextStream`
turns them into text pieces that are safe to print as they come: UTF-8 characters split across
tokens are held back until complete, and text that may be the start of a stop string is held
back until it is known not to be. Both can also be driven a token at a time from outside
(Generation.context / choose, TextStream.push / flush), as the server does to compute many
generations' next tokens in one forward.
"""

import time
import warnings

from gpt2numba.errors import ArgumentError, is_count
from gpt2numba.sampling import Sampler, SamplingSettings

STOP_REASONS = {
    "length": "max_new_tokens reached",
    "eos": "the model wrote <|endoftext|>",
    "stop": "a stop string was written",
    "context": "the context window is full",
}


class ContextFullWarning(UserWarning):
    """Generation stopped early because prompt + new tokens reached n_positions."""


class Generation:
    """Iterate to get the new token ids one by one as they are chosen.

    `next_logits` maps ids [n] (n <= n_positions) to the float32 logits [vocab] of the last
    position. An empty prompt conditions on `eos_id`, as GPT-2's unconditional samples do.
    With slide=False generation stops when the context is full; with slide=True each forward
    sees only the last n_positions tokens, of the prompt too. `sampling`: the keywords of
    SamplingSettings (temperature, top_k, top_p, repetition_penalty, seed).

    After iteration, `stop_reason` is a key of STOP_REASONS (None while it runs), `new_ids`
    holds the ids chosen, `seconds` the time spent in the loop and `first_token_seconds` the
    time to the first id. Iterating is calling choose(next_logits(context())) until context()
    is None.
    """

    def __init__(self, next_logits, prompt_ids, *, n_positions, eos_id, max_new_tokens=50,
                 stop_at_eos=True, slide=False, **sampling):
        if not (is_count(max_new_tokens) and max_new_tokens >= 0):
            raise ArgumentError("max_new_tokens", f"max_new_tokens must be an integer >= 0, got "
                                                  f"{max_new_tokens!r}")
        max_new_tokens = int(max_new_tokens)
        self.sampler = Sampler(SamplingSettings(**sampling))
        self.next_logits = next_logits
        ids = list(prompt_ids) or [eos_id]
        self.prompt_ids = ids[-n_positions:] if slide else ids  # the model sees no more anyway
        self.n_positions = n_positions
        self.eos_id = eos_id
        self.max_new_tokens = max_new_tokens
        self.stop_at_eos = stop_at_eos
        self.slide = slide
        self.new_ids = []
        self._ids = list(self.prompt_ids)   # what the model has seen and chosen so far
        self.stop_reason = None
        self.seconds = 0.0
        self.first_token_seconds = None

    def context(self) -> list[int] | None:
        """The ids (at most n_positions, the last ones) whose last position's logits choose the
        next token; None once the generation has ended, and stop_reason says why."""
        if self.stop_reason is None and len(self.new_ids) >= self.max_new_tokens:
            self.stop_reason = "length"
        if self.stop_reason is None and len(self._ids) >= self.n_positions and not self.slide:
            self.stop_reason = "context"
        return None if self.stop_reason else self._ids[-self.n_positions:]

    def choose(self, logits) -> int | None:
        """The next token, sampled from logits [vocab] float32 of context()'s last position and
        added to the ids; None when it is <|endoftext|> and stop_at_eos (the generation ends)."""
        token = self.sampler(logits, self._ids)
        if token == self.eos_id and self.stop_at_eos:
            self.stop_reason = "eos"
            return None
        self._ids.append(token)
        self.new_ids.append(token)
        return token

    def __iter__(self):
        start = time.perf_counter()
        while (ids := self.context()) is not None:
            token = self.choose(self.next_logits(ids))
            if self.first_token_seconds is None:
                self.first_token_seconds = time.perf_counter() - start
            self.seconds = time.perf_counter() - start
            if token is not None:
                yield token
        self.seconds = time.perf_counter() - start


class TextStream:
    """Iterate to get the continuation of a Generation as text pieces, printable as they come.

    Ends at the first occurrence of any string in `stop` (which is not included); then
    `stop_reason` is "stop", else the Generation's. When the context filled up, the end of the
    iteration warns with a ContextFullWarning. `new_ids`, `seconds` and `first_token_seconds`
    are the Generation's; `stopped_because` says the stop reason in words.
    """

    def __init__(self, generation, tokenizer, stop=()):
        self.generation = generation
        self.tokenizer = tokenizer
        self.stop = [s for s in ((stop,) if isinstance(stop, str) else stop) if s]
        self.stopped_at_string = False
        self._pieces = None
        self._decoder = tokenizer.stream_decoder()
        self._text = ""      # the continuation's text so far
        self._emitted = 0    # how much of it was given out

    @property
    def stop_reason(self):
        """Why the stream ended: a key of STOP_REASONS (None while it runs)."""
        return "stop" if self.stopped_at_string else self.generation.stop_reason

    @property
    def stopped_because(self):
        """The stop reason in words, e.g. "max_new_tokens reached"."""
        return STOP_REASONS.get(self.stop_reason, self.stop_reason)

    @property
    def new_ids(self):
        """The token ids generated so far (list of int)."""
        return self.generation.new_ids

    @property
    def seconds(self):
        """Wall time spent in the decoding loop so far, in seconds."""
        return self.generation.seconds

    @property
    def first_token_seconds(self):
        """Seconds from the start of the loop to the first token (None before it)."""
        return self.generation.first_token_seconds

    def context_full_message(self, slide="slide=True"):
        """What happened when the context filled up and how to go on; `slide` is how the caller
        spells that option (the command line says --slide)."""
        n = self.generation.n_positions
        return (f"generation stopped after {len(self.new_ids)} new tokens: prompt and "
                f"continuation fill the model's {n}-token context; pass {slide} to keep going on "
                f"the last {n} tokens")

    def __iter__(self):
        return self

    def __next__(self):
        if self._pieces is None:
            self._pieces = self._stream_pieces()
        return next(self._pieces)

    def push(self, token) -> str | None:
        """Take the next token id: the text it makes safe to show, or None while that is held
        back (part of a UTF-8 character, or maybe the start of a stop string). When a stop
        string is complete: the text before it, and stopped_at_string is True (push no more)."""
        self._text += self._decoder.push(token)
        safe = len(self._text)
        if self.stop:
            longest = max(len(s) for s in self.stop)
            found = [i for i in (self._text.find(s, max(0, self._emitted - longest))
                                 for s in self.stop) if i >= 0]
            if found:
                self.stopped_at_string = True
                return self._give_out(min(found))
            safe -= _held_back(self._text, self.stop)
        return self._give_out(safe) if safe > self._emitted else None

    def flush(self) -> str | None:
        """After the last token: the text still held back, or None."""
        self._text += self._decoder.flush()
        return self._give_out(len(self._text)) if len(self._text) > self._emitted else None

    def _give_out(self, end):
        piece, self._emitted = self._text[self._emitted:end], end
        return piece

    def _stream_pieces(self):
        for token in self.generation:
            piece = self.push(token)
            if piece is not None:
                yield piece
            if self.stopped_at_string:
                return
        piece = self.flush()
        if piece is not None:
            yield piece
        if self.stop_reason == "context":
            warnings.warn(self.context_full_message(), ContextFullWarning, stacklevel=3)


def _held_back(text, stop):
    """Length of the longest end of `text` that is the beginning of a stop string."""
    for length in range(min(len(text), max(len(s) for s in stop) - 1), 0, -1):
        tail = text[-length:]
        if any(s.startswith(tail) for s in stop):
            return length
    return 0
