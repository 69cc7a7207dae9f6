"""With OpenAI's real gpt2 weights: the greedy continuation picoGPT's README publishes.

Runs only when openai-community/gpt2 is already in the local Hugging Face cache (tests talk to
no network); elsewhere it is skipped and says how to make it run.
"""

from pathlib import Path

import pytest
from huggingface_hub import try_to_load_from_cache

from gpt2numba.weights import CHECKPOINT_FILES

PROMPT = "Alan Turing theorized that computers would one day become"
PUBLISHED = (" the most powerful machines on the planet.\n\nThe computer is a machine that can "
             "perform complex calculations, and it can perform these calculations in a way that "
             "is very similar to the human brain.\n")


def cached_gpt2_folder():
    paths = [try_to_load_from_cache("openai-community/gpt2", name) for name in CHECKPOINT_FILES]
    if not all(isinstance(p, str) for p in paths):
        return None
    folders = {Path(p).parent for p in paths}
    return folders.pop() if len(folders) == 1 else None


def test_greedy_continuation_of_the_real_gpt2():
    folder = cached_gpt2_folder()
    if folder is None:
        pytest.skip("openai-community/gpt2 is not in the local Hugging Face cache (no network "
                    "here); run `gpt2numba download gpt2` once on a connected machine to enable "
                    "this test")
    from gpt2numba import GPT2

    model = GPT2.from_pretrained(folder)
    assert model.generate(PROMPT, max_new_tokens=40) == PUBLISHED
