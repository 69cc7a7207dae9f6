"""Non-finite numbers in a checkpoint: a NaN or inf weight is refused at load with a WeightsError
naming the tensor (the CLI: one line, exit 1), whether the load checks with the kernels or, as
on a first run, with their NumPy versions; finite weights whose forward overflows give
NonFiniteLogitsError at the first token instead of a token chosen from NaN."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from gpt2numba import GPT2, WeightsError, kernels, numpy_checks, params
from gpt2numba.sampling import NonFiniteLogitsError


def with_tensor_changed(source, folder, name, change):
    """A copy of checkpoint `source` in `folder` whose tensor `name` is edited by `change`."""
    shutil.copytree(source, folder)
    tensors = load_file(folder / "model.safetensors")
    tensors[name] = change(tensors[name].copy())
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def put(index, value):
    def change(array):
        array[index] = value
        return array
    return change


@pytest.mark.parametrize("name,index,value", [
    ("transformer.wte.weight", (5, 3), np.nan),
    ("transformer.wte.weight", (50000, 63), -np.inf),
    ("transformer.h.1.mlp.c_fc.weight", (63, 255), np.inf),
    ("transformer.ln_f.bias", (0,), -np.inf),
])
@pytest.mark.parametrize("checks", [kernels, numpy_checks], ids=["kernels", "numpy"])
def test_a_non_finite_weight_is_refused_naming_the_tensor(tiny_checkpoint, tmp_path, monkeypatch,
                                                          name, index, value, checks):
    monkeypatch.setattr(params, "load_checks", lambda: checks)
    folder = with_tensor_changed(tiny_checkpoint, tmp_path / "model", name, put(index, value))
    with pytest.raises(WeightsError) as error:
        GPT2.from_pretrained(folder)
    message = str(error.value)
    assert repr(name.removeprefix("transformer.")) in message
    assert str(list(index)) in message and str(folder / "model.safetensors") in message


def test_the_cli_refuses_nan_weights_in_one_line(tiny_checkpoint, tmp_path, home):
    folder = with_tensor_changed(tiny_checkpoint, tmp_path / "model", "transformer.wte.weight",
                                 put((0, 0), np.nan))
    done = subprocess.run([sys.executable, "-m", "gpt2numba", "run", "--model", str(folder),
                           "--prompt", "Hello", "--max-new-tokens", "3"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "'wte.weight'" in done.stderr


def test_logits_that_overflow_are_an_error_not_a_token(tiny_checkpoint, tmp_path):
    """ln_f's gain at float32's largest value: every weight finite, the logits inf and NaN."""
    big = np.finfo(np.float32).max
    folder = with_tensor_changed(tiny_checkpoint, tmp_path / "model", "transformer.ln_f.weight",
                                 lambda gain: np.full_like(gain, big))
    model = GPT2.from_pretrained(folder)
    assert not np.isfinite(model.next_token_logits([464, 3290])).all()
    for options in ({}, {"temperature": 1.0, "seed": 0}):
        with pytest.raises(NonFiniteLogitsError, match="not finite"):
            model.generate_ids([464, 3290], 3, **options)
