"""gpt2numba: OpenAI's GPT-2 in Python, every math primitive a Numba kernel.

    from gpt2numba import GPT2
    model = GPT2.from_pretrained("gpt2")
    print(model.generate("Alan Turing theorized that", max_new_tokens=40))

`gpt2numba.compile()` compiles the kernels ahead (the first forward would, once per machine:
Numba keeps them in its disk cache).

The names below are imported on first use (PEP 562), not with the package: importing NumPy
and Numba takes most of a second, and the command line must be able to catch Ctrl-C from its
first moment, which it can only do once its own (small) module is running.
"""

import importlib

_HOMES = {
    "GPT2": "gpt2numba.model",
    "GPT2Config": "gpt2numba.config",
    "ArgumentError": "gpt2numba.errors",
    "ContextFullWarning": "gpt2numba.generate",
    "SamplingSettings": "gpt2numba.sampling",
    "Tokenizer": "gpt2numba.tokenizer",
    "WeightsError": "gpt2numba.weights",
    "compile": "gpt2numba.compiling",
    "compare": "gpt2numba.comparison",
}

__all__ = list(_HOMES)


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module 'gpt2numba' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])
