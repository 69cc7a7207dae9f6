"""Random-init GPT-2 checkpoints written by transformers, in the Hub's own file format.

The tests never write model files by hand: `transformers.GPT2LMHeadModel.save_pretrained` does,
so the files have exactly the layout a Hub download has. `original_layout=True` rewrites them
the way OpenAI's converted files look (no `transformer.` prefix, `h.N.attn.bias` mask buffers).
"""

import json
import shutil
from pathlib import Path

import numpy as np

from support.paths import VOCAB_DIR

SHAPES = {
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024, n_positions=1024),
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280, n_positions=1024),
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600, n_positions=1024),
    "distilgpt2": dict(n_layer=6, n_head=12, n_embd=768, n_positions=1024),
}


def make_checkpoint(folder, *, n_layer=2, n_head=4, n_embd=64, n_positions=128,
                    vocab_size=50257, initializer_range=0.5, seed=0,
                    original_layout=False, torch_dtype="float32"):
    """Write config.json, model.safetensors, vocab.json and merges.txt into `folder`.

    The weights are transformers' random init with `initializer_range` (0.5 by default: wide
    logit margins, so greedy decoding varies and parity tests mean something). Returns the
    folder as a Path.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_positions=n_positions,
                        vocab_size=vocab_size, initializer_range=initializer_range)
    model = GPT2LMHeadModel(config).eval()
    if torch_dtype == "float16":
        model = model.half()
    elif torch_dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    if original_layout:
        _rewrite_as_original(folder / "model.safetensors", n_layer, n_positions)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(VOCAB_DIR / name, folder / name)
    return folder


def _rewrite_as_original(path, n_layer, n_positions):
    """Drop the `transformer.` prefix and lm_head, add the causal-mask buffers OpenAI's files
    carry."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(path)
    renamed = {name.removeprefix("transformer."): value for name, value in tensors.items()
               if name != "lm_head.weight"}
    mask = np.tril(np.ones((n_positions, n_positions), dtype=renamed["wte.weight"].dtype))
    for i in range(n_layer):
        renamed[f"h.{i}.attn.bias"] = mask[None, None]
    save_file(renamed, path, metadata={"format": "pt"})


def read_config(folder):
    return json.loads((Path(folder) / "config.json").read_text())
