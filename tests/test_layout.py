"""weights.layout, GPT-2's table of tensors, against transformers' own GPT2LMHeadModel."""

import numpy as np
import pytest

from gpt2numba.weights.layout import (
    block_index,
    canonical_name,
    is_conv1d_weight,
    is_not_a_weight,
    records,
    tensor_shapes,
)


@pytest.fixture(scope="module")
def theirs():
    """An untrained transformers GPT-2 of odd sizes, and its config (which has the size names)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=3, n_head=2, n_embd=22, n_positions=17, vocab_size=51)
    return GPT2LMHeadModel(config), config


def test_names_shapes_and_order_are_transformers(theirs):
    model, config = theirs
    stored = {canonical_name(name): tuple(value.shape)
              for name, value in model.state_dict().items()}
    assert {name for name in stored if is_not_a_weight(name)} == {"lm_head.weight"}
    weights = {name: shape for name, shape in stored.items() if not is_not_a_weight(name)}
    assert list(tensor_shapes(config).items()) == list(weights.items())


def test_conv1d_weights_are_transformers_conv1d_modules(theirs):
    from transformers.pytorch_utils import Conv1D

    model, config = theirs
    conv1d = {canonical_name(name) + ".weight" for name, module in model.named_modules()
              if isinstance(module, Conv1D)}
    assert len(conv1d) == 4 * config.n_layer
    assert {name for name in tensor_shapes(config) if is_conv1d_weight(name)} == conv1d


def test_block_index():
    assert block_index("h.0.ln_1.weight") == 0
    assert block_index("h.12.attn.bias") == 12
    assert block_index("wte.weight") is None
    assert block_index("ln_f.bias") is None


def test_records_nest_dotted_names_and_list_the_blocks_in_layer_order():
    wte, ln_f = np.zeros(1), np.ones(1)
    biases = [np.full(1, i) for i in range(12)]
    flat = {f"h.{i}.attn.c_attn.bias": biases[i] for i in (11, 2, 10, 0, 1, 3, 4, 5, 6, 7, 8, 9)}
    tree = records({"wte.weight": wte, **flat, "ln_f.bias": ln_f})
    assert tree.wte.weight is wte and tree.ln_f.bias is ln_f
    assert len(tree.h) == 12
    assert all(tree.h[i].attn.c_attn.bias is biases[i] for i in range(12))
