"""GPT2Config: config.json read, typed, defaulted like transformers', and refused when not GPT-2."""

import json
import shutil

import pytest

from gpt2numba.config import GPT2Config
from gpt2numba.weights import WeightsError


def test_config_is_read_and_typed(tiny_checkpoint):
    config = GPT2Config.from_folder(tiny_checkpoint)
    assert config == GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=128,
                                vocab_size=50257, layer_norm_epsilon=1e-5)
    assert all(type(getattr(config, k)) is int
               for k in ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size"))
    assert type(config.layer_norm_epsilon) is float


def test_absent_keys_take_gpt2s_sizes(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert GPT2Config.from_folder(tmp_path) == GPT2Config(
        n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257,
        layer_norm_epsilon=1e-5)


def test_defaults_are_transformers_defaults():
    from transformers import GPT2Config as TransformersGPT2Config

    theirs = TransformersGPT2Config()
    ours = GPT2Config()
    for key in ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "layer_norm_epsilon"):
        assert getattr(ours, key) == getattr(theirs, key), key


def write_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("changes, words", [
    ({"activation_function": "relu"},
     ["activation_function is 'relu'", "tanh GELU (gelu_new) only"]),
    ({"model_type": "llama"}, ["model_type is 'llama'"]),
    ({"n_embd": 66}, ["not divisible by n_head"]),
    ({"n_layer": 0}, ["n_layer is 0", "positive integer"]),
    ({"n_head": "4"}, ["n_head is '4'"]),
    ({"vocab_size": True}, ["vocab_size is True", "positive integer"]),
    ({"layer_norm_epsilon": -1}, ["layer_norm_epsilon"]),
    ({"layer_norm_epsilon": "1e-5"}, ["layer_norm_epsilon is '1e-5'", "positive number"]),
    ({"n_inner": 100}, ["n_inner is 100", "4 * n_embd = 256"]),
    ({"scale_attn_weights": False}, ["scale_attn_weights is False"]),
    ({"scale_attn_by_inverse_layer_idx": True}, ["scale_attn_by_inverse_layer_idx is True"]),
    ({"reorder_and_upcast_attn": True}, ["reorder_and_upcast_attn is True"]),
    ({"tie_word_embeddings": False}, ["tie_word_embeddings is False"]),
])
def test_config_that_is_not_gpt2s_math_is_refused(tiny_checkpoint, tmp_path, changes, words):
    shutil.copytree(tiny_checkpoint, tmp_path / "m")
    write_config(tmp_path / "m", **changes)
    with pytest.raises(WeightsError) as error:
        GPT2Config.from_folder(tmp_path / "m")
    message = str(error.value)
    assert str(tmp_path / "m" / "config.json") in message
    for word in words:
        assert word in message


def test_n_inner_equal_to_four_n_embd_is_accepted(tiny_checkpoint, tmp_path):
    shutil.copytree(tiny_checkpoint, tmp_path / "m")
    write_config(tmp_path / "m", n_inner=256)
    assert GPT2Config.from_folder(tmp_path / "m").n_embd == 64


@pytest.mark.parametrize("text", ['{"n_layer": 2,', "[1, 2]", "\xff\xfe"])
def test_malformed_config_names_the_file(tmp_path, text):
    (tmp_path / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(WeightsError, match="config.json") as error:
        GPT2Config.from_folder(tmp_path)
    assert str(tmp_path / "config.json") in str(error.value)


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(WeightsError, match="config.json does not exist"):
        GPT2Config.from_folder(tmp_path)
