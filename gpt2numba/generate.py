"""The decoding loop, below the model: it needs only a next-logits function, the context length
(n_positions) and the end-of-text id. One forward of the whole sequence per new token (no KV
cache, as GPT-2's original sampling code), the next token chosen from the last position's logits.

`Generation` yields token ids and records why it stopped and how long it took; `TextStream`
turns them into text pieces that are safe to print as they come: UTF-8 characters split across
tokens are held back until complete, and text that may be the start of a stop string is held
back until it is known not to be.
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

    After iteration, `stop_reason` is a key of STOP_REASONS, `new_ids` holds the ids chosen,
    `seconds` the time spent in the loop and `first_token_seconds` the time to the first id.
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
        self.stop_reason = None
        self.seconds = 0.0
        self.first_token_seconds = None

    def __iter__(self):
        ids = list(self.prompt_ids)
        start = time.perf_counter()
        self.stop_reason = "length"
        while len(self.new_ids) < self.max_new_tokens:
            if len(ids) >= self.n_positions and not self.slide:
                self.stop_reason = "context"
                break
            token = self.sampler(self.next_logits(ids[-self.n_positions:]), ids)
            if self.first_token_seconds is None:
                self.first_token_seconds = time.perf_counter() - start
            if token == self.eos_id and self.stop_at_eos:
                self.stop_reason = "eos"
                break
            ids.append(token)
            self.new_ids.append(token)
            self.seconds = time.perf_counter() - start
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
            self._pieces = self._text()
        return next(self._pieces)

    def _text(self):
        decoder = self.tokenizer.stream_decoder()
        text, emitted = "", 0
        longest = max((len(s) for s in self.stop), default=0)
        for token in self.generation:
            text += decoder.push(token)
            if self.stop:
                found = [i for i in (text.find(s, max(0, emitted - longest)) for s in self.stop)
                         if i >= 0]
                if found:
                    self.stopped_at_string = True
                    yield text[emitted:min(found)]
                    return
                safe = len(text) - _held_back(text, self.stop)
            else:
                safe = len(text)
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
        text += decoder.flush()
        if len(text) > emitted:
            yield text[emitted:]
        if self.stop_reason == "context":
            warnings.warn(self.context_full_message(), ContextFullWarning, stacklevel=3)


def _held_back(text, stop):
    """Length of the longest end of `text` that is the beginning of a stop string."""
    for length in range(min(len(text), max(len(s) for s in stop) - 1), 0, -1):
        tail = text[-length:]
        if any(s.startswith(tail) for s in stop):
            return length
    return 0
