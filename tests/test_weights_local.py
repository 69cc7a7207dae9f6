"""Local folders: both tensor layouts load, values equal transformers', half precisions."""

import mmap
import shutil

import numpy as np
import pytest

from gpt2numba.config import GPT2Config
from gpt2numba.weights import (
    CHECKPOINT_FILES,
    TOKENIZER_FILES,
    WeightsError,
    load_tensors,
    resolve,
    tensor_shapes,
)
from support.checkpoints import make_checkpoint


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """Tiny checkpoints from one seed: transformers layout, original layout, fp16, bf16."""
    root = tmp_path_factory.mktemp("local_ckpt")
    return {
        "hf": make_checkpoint(root / "hf", seed=0),
        "orig": make_checkpoint(root / "orig", seed=0, original_layout=True),
        "f16": make_checkpoint(root / "f16", seed=0, torch_dtype="float16"),
        "bf16": make_checkpoint(root / "bf16", seed=0, torch_dtype="bfloat16"),
    }


@pytest.fixture(scope="session")
def torch_weights(ckpt):
    """The float32 model's parameters as transformers loads them, canonical names, numpy."""
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(ckpt["hf"])
    return {name.removeprefix("transformer."): value.detach().numpy().copy()
            for name, value in model.state_dict().items()}


def load(folder):
    folder = resolve(folder)
    return load_tensors(folder, GPT2Config.from_folder(folder))


@pytest.mark.parametrize("layout", ["hf", "orig"])
def test_both_layouts_equal_the_transformers_model(ckpt, torch_weights, layout):
    tensors = load(ckpt[layout])
    config = GPT2Config.from_folder(ckpt[layout])
    assert list(tensors) == list(tensor_shapes(config))  # canonical names, model order
    assert set(torch_weights) - set(tensors) == {"lm_head.weight"}  # tied to wte, not loaded
    np.testing.assert_array_equal(torch_weights["lm_head.weight"], tensors["wte.weight"])
    for name, value in tensors.items():
        assert value.dtype == np.float32 and value.flags.c_contiguous, name
        assert value.shape == tensor_shapes(config)[name]
        np.testing.assert_array_equal(value, torch_weights[name], err_msg=name)


def test_conv1d_weights_keep_the_stored_in_out_layout(ckpt):
    tensors = load(ckpt["hf"])
    e = 64
    assert tensors["h.0.attn.c_attn.weight"].shape == (e, 3 * e)
    assert tensors["h.1.mlp.c_fc.weight"].shape == (e, 4 * e)
    assert tensors["h.1.mlp.c_proj.weight"].shape == (4 * e, e)


def test_float32_tensors_are_read_only_and_each_has_its_own_memory_map(ckpt):
    tensors = load(ckpt["hf"])
    maps = []
    for name, value in tensors.items():
        assert type(value) is np.ndarray and not value.flags.writeable, name
        assert not value.flags.owndata and value.flags.aligned, name
        base = value
        while not isinstance(base, mmap.mmap):  # ndarray -> np.memmap -> mmap.mmap
            base = base.base
            assert base is not None, f"{name} is not backed by a memory map"
        maps.append(base)
    assert len({id(m) for m in maps}) == len(tensors)


def test_float16_checkpoint_loads_as_float32_within_half_precision(ckpt):
    full, half = load(ckpt["hf"]), load(ckpt["f16"])
    assert list(half) == list(full)
    for name in full:
        assert half[name].dtype == np.float32 and half[name].flags.c_contiguous
        # fp16 keeps 11 significant bits: relative error <= 2**-11 (plus subnormals near 0)
        np.testing.assert_allclose(half[name], full[name], rtol=2**-11, atol=6e-8, err_msg=name)
        np.testing.assert_array_equal(half[name], full[name].astype(np.float16).astype(np.float32))


def test_bfloat16_checkpoint_loads_as_float32_within_bfloat16_precision(ckpt):
    full, bf = load(ckpt["hf"]), load(ckpt["bf16"])
    for name in full:
        assert bf[name].dtype == np.float32 and bf[name].flags.c_contiguous
        np.testing.assert_allclose(bf[name], full[name], rtol=2**-8, atol=0, err_msg=name)
        assert (bf[name].view(np.uint32) & 0xFFFF == 0).all()  # exactly representable in bf16


def test_local_folder_is_used_as_is(ckpt):
    assert resolve(ckpt["hf"]) == ckpt["hf"]
    assert resolve(str(ckpt["hf"]), files=TOKENIZER_FILES) == ckpt["hf"]


def test_folder_with_only_a_pickle_checkpoint_is_refused(ckpt, tmp_path):
    folder = tmp_path / "bin_only"
    folder.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        shutil.copy(ckpt["hf"] / name, folder / name)
    (folder / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not loaded")
    with pytest.raises(WeightsError) as error:
        resolve(folder)
    message = str(error.value)
    assert "pytorch_model.bin" in message and "safetensors" in message
    assert "pickle" in message
    # a tokenizer-only user is not bothered by the missing weights
    assert resolve(folder, files=TOKENIZER_FILES) == folder


def test_folder_missing_files_names_them(ckpt, tmp_path):
    folder = tmp_path / "partial"
    folder.mkdir()
    shutil.copy(ckpt["hf"] / "config.json", folder / "config.json")
    with pytest.raises(WeightsError) as error:
        resolve(folder)
    message = str(error.value)
    for name in CHECKPOINT_FILES[1:]:
        assert name in message
    assert str(folder) in message


def test_path_that_is_a_file_or_does_not_exist(ckpt, tmp_path):
    with pytest.raises(WeightsError, match="is a file, not a folder"):
        resolve(ckpt["hf"] / "config.json")
    with pytest.raises(WeightsError, match="does not exist"):
        resolve(tmp_path / "nowhere")
    with pytest.raises(WeightsError, match="does not exist"):
        resolve("./nowhere/at/all")


def test_revision_with_a_local_folder_is_an_error(ckpt):
    with pytest.raises(WeightsError, match="local folder"):
        resolve(ckpt["hf"], revision="v1")
