"""The forward (blocks.gpt2, through GPT2) against reference.gpt2, plain float64 NumPy, no torch.

Tolerance: max |ours - reference| <= 1e-5 x max |reference| over the logits compared. The
reference is float64, so the difference is our float32 rounding, accumulated over the tiny
checkpoint's 2 blocks and the head; 1e-5 is about 170 float32 ulps (2^-24 each) of the largest
logit, and ten times tighter than the comparison with transformers' own float32
(test_model_parity.py). The tiny checkpoint's initializer_range 0.5 spreads the logits, so
errors in any tensor's use show.

In a fresh process, the forward calls exactly the kernels blocks.FORWARD_KERNELS lists, and
compiles each once: the head's NO_BIAS and the projections' biases are one Numba type (each
other type would compile the whole kernel again on a user's first run).
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gpt2numba.weights import load_tensors
from support import reference

RELATIVE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def tensors(tiny_checkpoint, tiny_model):
    return load_tensors(tiny_checkpoint, tiny_model.config)


def relative_error(ours, exact):
    return float(np.max(np.abs(ours - exact)) / np.max(np.abs(exact)))


@pytest.mark.parametrize("n", [1, 2, 37, 128])   # 128: the tiny checkpoint's n_positions
def test_logits_match_the_float64_reference(tiny_model, tensors, n):
    ids = np.random.default_rng(n).integers(0, tiny_model.config.vocab_size, size=n)
    exact = reference.gpt2(ids, tensors, tiny_model.config)
    ours = tiny_model.logits(ids)
    assert ours.shape == exact.shape == (n, tiny_model.config.vocab_size)
    assert relative_error(ours, exact) <= RELATIVE_TOLERANCE


@pytest.mark.parametrize("lengths", [[5, 1, 37], [16, 17, 16], [1] * 9, [100, 28]])
def test_packed_logits_match_each_text_alone_in_float64(tiny_model, tensors, lengths):
    rng = np.random.default_rng(sum(lengths))
    id_lists = [rng.integers(0, tiny_model.config.vocab_size, size=n) for n in lengths]
    packed = tiny_model.packed_logits(id_lists)
    assert [logits.shape[0] for logits in packed] == lengths
    for ids, ours in zip(id_lists, packed):
        exact = reference.gpt2(ids, tensors, tiny_model.config)
        assert relative_error(ours, exact) <= RELATIVE_TOLERANCE


def test_packed_logits_refuse_more_than_the_context(tiny_model):
    n_positions = tiny_model.config.n_positions
    with pytest.raises(ValueError, match=f"1 to {n_positions} ids in all") as error:
        tiny_model.packed_logits([[1] * 100, [2] * (n_positions - 99)])
    assert error.value.argument == "id_lists"


def test_a_model_with_partial_weight_groups_matches_the_float64_reference(tmp_path):
    # n_embd 256: the projections to 256 outputs are packed in 6 groups of 48 columns, the last
    # with 32 columns of zeros (pack_checked), and the MLP's 1024 inputs are 4 KiB rows.
    from gpt2numba import GPT2
    from support.checkpoints import make_checkpoint

    folder = make_checkpoint(tmp_path, n_layer=1, n_head=4, n_embd=256, n_positions=32)
    model = GPT2.from_pretrained(folder)
    assert model.params.h[0].mlp.c_proj.weight.shape == (6, 1024, 48)
    ids = np.random.default_rng(3).integers(0, model.config.vocab_size, size=29)
    exact = reference.gpt2(ids, load_tensors(folder, model.config), model.config)
    assert relative_error(model.logits(ids), exact) <= RELATIVE_TOLERANCE


def test_last_row_head_matches_the_float64_reference(tiny_model, tensors):
    ids = tiny_model.tokenizer.encode("The quick brown fox jumps over the lazy dog")
    exact = reference.gpt2(ids, tensors, tiny_model.config)[-1]
    assert relative_error(tiny_model.next_token_logits(ids), exact) <= RELATIVE_TOLERANCE


@pytest.mark.parametrize("first", [1, 16, 17, 36])   # 16, 17: past a block of 16 rows
def test_logits_from_a_position_match_the_float64_reference(tiny_model, tensors, first):
    ids = np.random.default_rng(first).integers(0, tiny_model.config.vocab_size, size=37)
    exact = reference.gpt2(ids, tensors, tiny_model.config)[first:]
    ours = tiny_model.logits(ids, from_position=first)
    assert ours.shape == exact.shape
    assert relative_error(ours, exact) <= RELATIVE_TOLERANCE


# A fresh process (no test has called a kernel in it) loads the model (which runs kernels of
# its own), runs both forwards, then prints how many versions (compiled or loaded from the
# cache) the forwards added to each public kernel, and FORWARD_KERNELS.
FORWARD_IN_A_FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    from gpt2numba import GPT2, kernels
    from gpt2numba.blocks import FORWARD_KERNELS

    def versions():
        return {name: len(getattr(kernels, name).signatures) for name in kernels.__all__}

    model = GPT2.from_pretrained(sys.argv[1])
    loaded = versions()
    model.logits(list(range(1000, 1009)))
    model.next_token_logits(list(range(1000, 1009)))
    print(json.dumps({name: count - loaded[name] for name, count in versions().items()
                      if count > loaded[name]}))
    print(json.dumps(sorted(kernel.__name__ for kernel in FORWARD_KERNELS)))
""")


def test_the_forward_calls_its_listed_kernels_each_compiled_once(tiny_checkpoint):
    run = subprocess.run([sys.executable, "-c", FORWARD_IN_A_FRESH_PROCESS, str(tiny_checkpoint)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    versions, listed = (json.loads(line) for line in run.stdout.splitlines()[-2:])
    assert sorted(versions) == listed
    assert versions == {name: 1 for name in listed}
