"""Checkpoints for gpt2numba: find a GPT-2 on the Hub or on disk, map and check its weights.

    from gpt2numba.weights import WeightsError, resolve, load_tensors, CHECKPOINT_FILES
    folder = resolve("gpt2")                # or "owner/name", or a local folder; revision="..."
    folder, downloaded = fetch("gpt2")      # the same, and whether a file came over the network
    tensors = load_tensors(folder, config)  # canonical name -> float32 ndarray, memory-mapped

`config` is any object with the sizes n_layer, n_embd, n_positions, vocab_size (gpt2numba's
GPT2Config reads them from config.json). `layout` is GPT-2's table of tensor names and shapes.
Every failure is a WeightsError with one sentence saying what is wrong and what to do. This
package knows nothing of kernels or of the model's math.
"""

from .checkpoint import load_tensors, read_header
from .errors import WeightsError
from .hub import CHECKPOINT_FILES, SHORT_NAMES, TOKENIZER_FILES, Fetched, fetch, resolve
from .layout import tensor_shapes

__all__ = ["WeightsError", "resolve", "fetch", "Fetched", "load_tensors", "CHECKPOINT_FILES",
           "TOKENIZER_FILES", "SHORT_NAMES", "tensor_shapes", "read_header"]
