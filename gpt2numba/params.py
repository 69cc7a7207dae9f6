"""A model's parts from a checkpoint folder: its config, its parameters (every weight checked
to be finite, the projections packed for the kernels) and its tokenizer."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numba
import numpy as np

import gpt2numba.kernels
from gpt2numba.config import GPT2Config
from gpt2numba.runtime import load_checks
from gpt2numba.tokenizer import Tokenizer
from gpt2numba.weights import WeightsError, load_tensors
from gpt2numba.weights.layout import is_conv1d_weight, records, tensor_shapes


def load_folder(folder: Path) -> tuple[GPT2Config, SimpleNamespace, Tokenizer]:
    """The config, parameters (params_from_tensors) and tokenizer of the checkpoint in `folder`
    (config.json, model.safetensors, vocab.json, merges.txt), or WeightsError saying what is
    wrong with which file."""
    config = GPT2Config.from_folder(folder)
    tensors = load_tensors(folder, config)
    checks = load_checks()  # the kernels, or on a first run their NumPy versions
    with ThreadPoolExecutor(max_workers=1) as pool:
        wte_checked = pool.submit(check_wte_finite, tensors["wte.weight"], folder, checks)
        tokenizer = Tokenizer.from_files(folder / "vocab.json", folder / "merges.txt")
        wte_checked.result()
    tokenizer.check_model(config.vocab_size, folder / "config.json")
    return config, params_from_tensors(tensors, config, folder, checks), tokenizer


def params_from_tensors(tensors, config: GPT2Config, folder,
                        checks=gpt2numba.kernels) -> SimpleNamespace:
    """Checkpoint tensors (canonical names, Conv1D [in, out]) -> the records blocks.gpt2 reads,
    every weight checked to be finite.

    The result is ``layout.records`` of the tensors, named like the checkpoint
    (params.h[i].attn.c_attn.weight, params.wte.weight, ...), with every Conv1D weight
    packed for `projection` by `pack_checked`, which also finds its first NaN or infinity in
    the same pass.
    Each copy's memory-mapped original is released as soon as it is copied, so the peak is one
    file plus the copies. The other tensors stay as they come (memory-mapped), read-only; the
    small ones are scanned here, and wte (a third of the file) by `check_wte_finite`, which the
    load runs beside the tokenizer. Every parameter is read-only, like the mapped ones:
    Numba compiles one version of a kernel per argument type, and a writable and a read-only
    weight are two types (a second compile of `linear` on the first run). `checks` has the
    two kernels used: gpt2numba.kernels, or numpy_checks (runtime.load_checks says when).
    """
    params = {}
    for name in tensor_shapes(config):
        tensor = tensors.pop(name)
        if is_conv1d_weight(name):
            params[name], first = checks.pack_checked(tensor)
            params[name].flags.writeable = False
        else:
            params[name] = tensor
            first = -1 if name == "wte.weight" else checks.first_nonfinite(tensor.reshape(-1))
        if first >= 0:
            raise _not_finite(folder, name, tensor, first)
    return records(params)


def check_wte_finite(wte, folder, checks):
    """WeightsError if wte [vocab, n_embd] holds a NaN or an infinity, found on one thread by
    checks.first_nonfinite (checks: gpt2numba.kernels or numpy_checks, as for the load).

    The load runs this beside the tokenizer's reading, which keeps one core busy in Python: the
    scan takes the other core, and so adds almost nothing to the load's time
    (`python benchmarks/finite_scan.py` measures it). wte stays memory-mapped: a copy would
    cost the load more than it saves the head (docs/performance.md).
    """
    numba.set_num_threads(1)  # this thread's setting only
    first = checks.first_nonfinite(wte.reshape(-1))
    if first >= 0:
        raise _not_finite(folder, "wte.weight", wte, first)


def _not_finite(folder, name, tensor, index):
    where = [int(i) for i in np.unravel_index(index, tensor.shape)]
    return WeightsError(f"{Path(folder) / 'model.safetensors'}: tensor {name!r} holds "
                        f"{tensor.reshape(-1)[index]} at {where}; GPT-2 weights are finite "
                        f"numbers, so the file is corrupt: download or copy it again")
