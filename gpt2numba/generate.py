"""The decoding loop: one forward of the whole sequence per new token (no KV cache, as GPT-2's
original sampling code), the next token chosen from the last position's logits.

`Generation` yields token ids and records why it stopped; `stream_text` turns ids into text
pieces that are safe to print as they come: UTF-8 characters split across tokens are held
back until complete, and text that may be the start of a stop string is held back until it
is known not to be.
"""

import time
import warnings

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
    """Iterate to get the new token ids one by one as the model chooses them.

    After iteration, `stop_reason` is one of STOP_REASONS, `new_ids` holds the ids produced,
    `seconds` the time spent in the loop and `first_token_seconds` the time to the first id.
    With slide=False a prompt longer than the context (n_positions) is a ValueError and
    generation stops when the context is full; with slide=True each forward sees only the last
    n_positions tokens, of the prompt too.
    """

    def __init__(self, model, prompt_ids, max_new_tokens=50, sampling=None, stop_at_eos=True,
                 slide=False):
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
        self.model = model
        ids = list(prompt_ids) or [model.tokenizer.eos_id]
        if slide:  # the model can see only the last n_positions tokens anyway
            ids = ids[-model.config.n_positions:]
        self.prompt_ids = model.check_ids(ids)
        self.max_new_tokens = max_new_tokens
        self.sampler = Sampler(sampling or SamplingSettings())
        self.stop_at_eos = stop_at_eos
        self.slide = slide
        self.new_ids = []
        self.stop_reason = None
        self.seconds = 0.0
        self.first_token_seconds = None

    def __iter__(self):
        n_positions = self.model.config.n_positions
        eos = self.model.tokenizer.eos_id
        ids = list(self.prompt_ids)
        start = time.perf_counter()
        self.stop_reason = "length"
        while len(self.new_ids) < self.max_new_tokens:
            if len(ids) >= n_positions and not self.slide:
                self.stop_reason = "context"
                break
            logits = self.model.next_token_logits(ids[-n_positions:])
            token = self.sampler(logits, ids)
            if self.first_token_seconds is None:
                self.first_token_seconds = time.perf_counter() - start
            if token == eos and self.stop_at_eos:
                self.stop_reason = "eos"
                break
            ids.append(token)
            self.new_ids.append(token)
            self.seconds = time.perf_counter() - start
            yield token
        self.seconds = time.perf_counter() - start

    def warn_if_cut(self):
        """Warn (ContextFullWarning) when the loop stopped because the context was full."""
        if self.stop_reason == "context":
            warnings.warn(f"generation stopped after {len(self.new_ids)} new tokens: prompt and "
                          f"continuation fill the model's {self.model.config.n_positions}-token "
                          f"context; pass slide=True to keep going on the last "
                          f"{self.model.config.n_positions} tokens", ContextFullWarning,
                          stacklevel=3)


def stream_text(generation, tokenizer, stop=()):
    """Text pieces of `generation`'s continuation, printable as they come.

    Ends at the first occurrence of any string in `stop` (which is not included); then
    generation.stop_reason is "stop".
    """
    stop = [s for s in stop if s]
    decoder = tokenizer.stream_decoder()
    text, emitted = "", 0
    longest = max((len(s) for s in stop), default=0)
    for token in generation:
        text += decoder.push(token)
        if stop:
            found = [i for i in (text.find(s, max(0, emitted - longest)) for s in stop) if i >= 0]
            if found:
                generation.stop_reason = "stop"
                yield text[emitted:min(found)]
                return
            safe = len(text) - _held_back(text, stop)
        else:
            safe = len(text)
        if safe > emitted:
            yield text[emitted:safe]
            emitted = safe
    text += decoder.flush()
    if len(text) > emitted:
        yield text[emitted:]


def _held_back(text, stop):
    """Length of the longest end of `text` that is the beginning of a stop string."""
    for length in range(min(len(text), max(len(s) for s in stop) - 1), 0, -1):
        tail = text[-length:]
        if any(s.startswith(tail) for s in stop):
            return length
    return 0
