"""gpt2numba: OpenAI's GPT-2 in Python, every math primitive a Numba kernel.

    from gpt2numba import GPT2
    model = GPT2.from_pretrained("gpt2")
    print(model.generate("Alan Turing theorized that", max_new_tokens=40))
"""

from gpt2numba.config import GPT2Config
from gpt2numba.errors import ArgumentError
from gpt2numba.generate import ContextFullWarning
from gpt2numba.model import GPT2
from gpt2numba.sampling import SamplingSettings
from gpt2numba.tokenizer import Tokenizer
from gpt2numba.weights import WeightsError

__all__ = ["GPT2", "GPT2Config", "ArgumentError", "ContextFullWarning", "SamplingSettings",
           "Tokenizer", "WeightsError"]
