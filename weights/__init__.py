"""Checkpoints for gpt2numba: find a GPT-2 on the Hub or on disk, read its config, map its weights.

    from gpt2numba.weights import WeightsError, resolve, read_config, load_tensors, CHECKPOINT_FILES
    folder = resolve("gpt2")            # or "owner/name", or a local folder; revision="..."
    config = read_config(folder)        # n_layer, n_head, n_embd, n_positions, vocab_size, eps
    tensors = load_tensors(folder, config)  # canonical name -> float32 ndarray, memory-mapped

Every failure is a WeightsError with one sentence saying what is wrong and what to do. This
package knows nothing of kernels or of the model's math.
"""

from .checkpoint import expected_shapes, load_tensors, read_header
from .config import read_config
from .errors import WeightsError
from .hub import CHECKPOINT_FILES, SHORT_NAMES, TOKENIZER_FILES, resolve

__all__ = ["WeightsError", "resolve", "read_config", "load_tensors", "CHECKPOINT_FILES",
           "TOKENIZER_FILES", "SHORT_NAMES", "expected_shapes", "read_header"]
