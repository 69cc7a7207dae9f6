"""Broken or foreign model.safetensors files: each gives a WeightsError naming file and tensor."""

import json
import shutil
import tracemalloc

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from gpt2numba.config import GPT2Config
from gpt2numba.weights import WeightsError, load_tensors
from support.checkpoints import make_checkpoint


@pytest.fixture(scope="session")
def good(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("bad_files") / "good", seed=1, vocab_size=1000)


@pytest.fixture
def model(good, tmp_path):
    """A fresh copy of the good checkpoint to break; returns (folder, path of model.safetensors)."""
    folder = shutil.copytree(good, tmp_path / "model")
    return folder, folder / "model.safetensors"


def load(folder):
    return load_tensors(folder, GPT2Config.from_folder(folder))


def rewrite(path, change):
    """Load every tensor (float32 copies), let `change` edit the dict, save it back."""
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def error_of(folder):
    with pytest.raises(WeightsError) as error:
        load(folder)
    return str(error.value)


def test_the_good_copy_loads(model):
    assert len(load(model[0])) == 4 + 12 * 2


def test_file_cut_in_half(model):
    folder, path = model
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = error_of(folder)
    assert str(path) in message and "truncated" in message
    # the tensor whose data is cut off is named (here: the last one in the file)
    assert "'transformer." in message and "ends at byte" in message


def test_header_length_past_end_of_file(model):
    folder, path = model
    path.write_bytes(path.read_bytes()[:100])
    message = error_of(folder)
    assert str(path) in message and "header" in message and "truncated" in message


def test_file_shorter_than_the_length_prefix(model):
    folder, path = model
    path.write_bytes(b"\x01\x02")
    assert "too short" in error_of(folder)


def test_header_that_is_not_json(model):
    folder, path = model
    data = bytearray(path.read_bytes())
    data[8:20] = b"not json {{{"
    path.write_bytes(bytes(data))
    message = error_of(folder)
    assert str(path) in message and "not valid JSON" in message


def test_header_with_inconsistent_byte_count(model):
    folder, path = model
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["transformer.ln_f.bias"]["shape"] = [65]
    text = json.dumps(header, separators=(",", ":")).encode().ljust(n)
    assert len(text) == n
    path.write_bytes(data[:8] + text + data[8 + n:])
    message = error_of(folder)
    assert "'transformer.ln_f.bias'" in message and "needs" in message


def test_wrong_shape_says_expected_and_found(model):
    folder, path = model
    name = "transformer.h.0.attn.c_attn.weight"
    rewrite(path, lambda t: t.update({name: np.ascontiguousarray(t[name].T)}))  # Linear layout
    message = error_of(folder)
    assert str(path) in message and repr(name) in message
    assert "shape [192, 64]" in message and "expected [64, 192]" in message
    assert "transposed" in message


def test_missing_tensor_is_named(model):
    folder, path = model
    rewrite(path, lambda t: t.pop("transformer.h.1.mlp.c_proj.bias"))
    message = error_of(folder)
    assert str(path) in message and "lacks tensor 'h.1.mlp.c_proj.bias'" in message


def test_integer_dtype_is_refused(model):
    folder, path = model
    name = "transformer.wpe.weight"
    rewrite(path, lambda t: t.update({name: t[name].astype(np.int32)}))
    message = error_of(folder)
    assert repr(name) in message and "dtype I32" in message and "float" in message


def test_float64_is_refused(model):
    folder, path = model
    name = "transformer.ln_f.weight"
    rewrite(path, lambda t: t.update({name: t[name].astype(np.float64)}))
    assert "dtype F64" in error_of(folder)


def test_more_layers_than_the_config_says(model):
    folder, path = model
    extra = "transformer.h.2.ln_1.weight"
    rewrite(path, lambda t: t.update({extra: t["transformer.h.1.ln_1.weight"]}))
    message = error_of(folder)
    assert "'transformer.h.2.ln_1.weight'" in message and "n_layer=2" in message


def test_unexpected_tensor_is_refused(model):
    folder, path = model
    rewrite(path, lambda t: t.update({"score.weight": np.zeros((2, 64), np.float32)}))
    message = error_of(folder)
    assert "unexpected tensor 'score.weight'" in message


def test_same_tensor_with_and_without_prefix(model):
    folder, path = model
    rewrite(path, lambda t: t.update({"wpe.weight": t["transformer.wpe.weight"]}))
    assert "twice" in error_of(folder)


def test_mask_buffers_and_lm_head_are_ignored(model):
    folder, path = model
    expected = load(folder)

    def add(t):
        t["transformer.h.0.attn.bias"] = np.ones((1, 1, 128, 128), np.float32)
        t["transformer.h.0.attn.masked_bias"] = np.array(-1e4, np.float32)
        t["lm_head.weight"] = t["transformer.wte.weight"]
    rewrite(path, add)
    loaded = load(folder)
    assert list(loaded) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(loaded[name], expected[name])


def test_lm_head_with_wtes_bytes_loads_even_with_a_nan(model):
    """Equal bytes is the criterion: a NaN equals itself there (and wte's NaN is the model's
    finiteness check's to refuse, not the loader's)."""
    folder, path = model

    def nan_in_both(t):
        wte = t["transformer.wte.weight"]
        wte[3, 5] = np.nan
        t["lm_head.weight"] = wte.copy()
    rewrite(path, nan_in_both)
    assert np.isnan(load(folder)["wte.weight"][3, 5])


def untied_head(t):
    t["lm_head.weight"] = t["transformer.wte.weight"].copy()
    t["lm_head.weight"][999, 63] += 1.0   # the very last element


def nan_payload_head(t):
    wte = t["transformer.wte.weight"]
    wte[0, 0] = np.nan
    t["lm_head.weight"] = wte.copy()
    t["lm_head.weight"].view(np.uint32)[0, 0] ^= 1   # another NaN: different bytes


@pytest.mark.parametrize("change,words", [
    (untied_head, "differs from"),
    (nan_payload_head, "differs from"),
    (lambda t: t.update({"lm_head.weight": t["transformer.wte.weight"][:, :32].copy()}),
     "shape [1000, 32]"),
    (lambda t: t.update({"lm_head.weight": t["transformer.wte.weight"].T.copy()}),
     "shape [64, 1000]"),
    (lambda t: t.update({"lm_head.weight": t["transformer.wte.weight"].astype(np.float16)}),
     "dtype F16"),
    (lambda t: t.update({"transformer.lm_head.weight": t["transformer.wte.weight"] * 2}),
     "differs from"),
])
def test_lm_head_that_is_not_wte_is_refused(model, change, words):
    """config.json ties the head to wte (tie_word_embeddings, true by default): a head of other
    bytes would be silently replaced by wte, so it is refused, as an untied config is."""
    folder, path = model
    rewrite(path, change)
    message = error_of(folder)
    assert str(path) in message and "lm_head.weight'" in message and words in message
    assert "tie_word_embeddings" in message and "\n" not in message


def test_the_head_is_compared_in_chunks_not_copied(tmp_path):
    """The comparison reads a chunk of each tensor at a time: no copy of wte or the head."""
    folder = make_checkpoint(tmp_path / "wide", n_layer=1, n_head=1, n_embd=128, n_positions=8)
    path = folder / "model.safetensors"
    rewrite(path, lambda t: t.update({"lm_head.weight": t["transformer.wte.weight"]}))
    wte_bytes = 50257 * 128 * 4
    config = GPT2Config.from_folder(folder)
    tracemalloc.start()
    try:
        load_tensors(folder, config)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < wte_bytes / 4, f"{peak} bytes allocated to compare two of {wte_bytes}"


def test_config_not_matching_the_weights(model):
    folder, _ = model
    config = json.loads((folder / "config.json").read_text())
    config["n_embd"] = 128
    (folder / "config.json").write_text(json.dumps(config))
    message = error_of(folder)
    assert "expected [1000, 128]" in message or "expected [128" in message
