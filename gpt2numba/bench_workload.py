"""The standard work, written once for gpt2numba and for transformers, and how it is timed:
what `gpt2numba bench` (bench.py, its fresh processes in bench_fresh.py) and
benchmarks/vs_transformers.py measure.

- W1: one forward of n tokens (ids 1000, 1001, ...), last-row logits, n in W1_LENGTHS up to the
  model's context;
- W2: greedy generation after the prompt ids 1000..1015, 64 new tokens, no KV cache.

Each our_* / their_* function makes its inputs and returns the call to time. Only the standard
library is imported here (torch by the their_* functions, which need it anyway): a fresh process
times the import of the library it runs, not of this module's.
"""

import statistics
import time
from dataclasses import dataclass

W1_LENGTHS = (16, 128, 512, 1024)
W2_PROMPT = list(range(1000, 1016))
W2_NEW_TOKENS = 64


def w1_lengths(n_positions, lengths=W1_LENGTHS) -> list[int]:
    """The W1 lengths that fit a context of n_positions tokens."""
    return [n for n in lengths if n <= n_positions]


def w1_ids(n) -> list[int]:
    """The n token ids of a W1 forward."""
    return [1000 + i % 40000 for i in range(n)]


def our_w1(model, n):
    """W1 of a gpt2numba GPT2: the forward of n tokens to time."""
    ids = w1_ids(n)
    return lambda: model.next_token_logits(ids)


def our_w2(model):
    """W2 of a gpt2numba GPT2: the call to time, which returns the number of new tokens."""
    def generate():
        return len(model.generate_ids(W2_PROMPT, W2_NEW_TOKENS, stop_at_eos=False))
    return generate


def their_w1(model, n):
    """W1 of a transformers GPT2LMHeadModel: the forward of n tokens to time, use_cache=False as
    gpt2numba; call it under torch.no_grad()."""
    import torch

    ids = torch.tensor([w1_ids(n)])
    return lambda: model(ids, use_cache=False).logits[0, -1]


def their_w2(model):
    """W2 of a transformers GPT2LMHeadModel: the call to time, which returns the number of new
    tokens."""
    import torch

    prompt = torch.tensor([W2_PROMPT])

    def generate():
        with torch.no_grad():
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                 max_new_tokens=W2_NEW_TOKENS, do_sample=False,
                                 use_cache=False, eos_token_id=None, pad_token_id=0)
        return out.shape[1] - len(W2_PROMPT)
    return generate


@dataclass
class Spread:
    """Median, min and max of repeated timings, in seconds."""
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, seconds):
        """The Spread of a list of timings."""
        return cls(float(statistics.median(seconds)), float(min(seconds)), float(max(seconds)))


def time_calls(function, repeats) -> Spread:
    """Run function once to warm up, then `repeats` times; return the Spread of the timed runs."""
    function()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return Spread.of(seconds)
