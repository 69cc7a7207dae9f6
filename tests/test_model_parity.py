"""The whole model against transformers.GPT2LMHeadModel on the same checkpoint files.

Logits: max |ours - theirs| / max |theirs| <= 1e-4 at every position. Greedy decoding: the
same 64 ids as transformers' generate(do_sample=False, use_cache=False). The checkpoints use
initializer_range 0.5, so logits are spread and greedy choices are not near-ties; the tests
check that this holds (the ids vary, the top-2 margins are wide) before trusting equality.
"""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from gpt2numba import GPT2
from support.checkpoints import SHAPES, make_checkpoint

PROMPT = "The quick brown fox jumps over the lazy dog. In 1905, Einstein"


def reference_model(folder):
    return GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()


def relative_error(ours, theirs):
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


@pytest.fixture(scope="module", params=["transformers-layout", "original-layout"])
def pair(request, tmp_path_factory):
    folder = make_checkpoint(tmp_path_factory.mktemp("parity"), seed=11,
                             original_layout=request.param == "original-layout")
    return GPT2.from_pretrained(folder), reference_model(folder)


def test_logits_match_at_every_position(pair):
    ours, theirs = pair
    ids = ours.tokenizer.encode(PROMPT)
    with torch.no_grad():
        expected = theirs(torch.tensor([ids])).logits[0].numpy()
    got = ours.logits(ids)
    assert got.shape == (len(ids), 50257) and got.dtype == np.float32
    assert relative_error(got, expected) <= 1e-4


def test_greedy_64_tokens_match_transformers(pair):
    ours, theirs = pair
    ids = ours.tokenizer.encode(PROMPT)
    with torch.no_grad():
        out = theirs.generate(torch.tensor([ids]),
                              attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                              max_new_tokens=64, do_sample=False, use_cache=False,
                              eos_token_id=None, pad_token_id=0)
    expected = out[0, len(ids):].tolist()
    got = ours.generate_ids(ids, 64, stop_at_eos=False)
    assert len(set(expected)) > 16, \
        "degenerate checkpoint: greedy repeats itself, parity would prove little"
    assert got == expected


def test_greedy_margins_are_wide(pair):
    ours, _ = pair
    logits = ours.logits(ours.tokenizer.encode(PROMPT))
    top2 = np.sort(logits, axis=1)[:, -2:]
    assert np.min(top2[:, 1] - top2[:, 0]) > 1e-3 * np.max(np.abs(logits))


def test_last_row_head_equals_full_logits(tiny_model):
    ids = tiny_model.tokenizer.encode(PROMPT)
    np.testing.assert_allclose(tiny_model.next_token_logits(ids), tiny_model.logits(ids)[-1],
                               rtol=0, atol=1e-5 * np.abs(tiny_model.logits(ids)).max())


OURS_IN_A_FRESH_PROCESS = """
import sys, numpy as np
from gpt2numba import GPT2
from gpt2numba.bench import peak_rss_bytes
before = peak_rss_bytes()
model = GPT2.from_pretrained(sys.argv[1])
np.save(sys.argv[2], model.logits(list(range(1000, 1008))))
print(before, peak_rss_bytes())
"""


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_gpt2_size_loads_and_matches(name, tmp_path, capsys):
    """Random checkpoints of the real shapes (gpt2 ... gpt2-xl, 6.2 GB): load, forward, parity.

    gpt2numba runs in a fresh process, so its peak RSS is its own; it is printed beside the file
    size (the load alone is bounded at 1.3x the file in test_weights_memory.py). Each
    checkpoint is deleted when its test ends; where the disk cannot hold one, it is skipped.
    """
    shape = SHAPES[name]
    file_size = 4 * shape["n_embd"] * (12 * shape["n_embd"] * shape["n_layer"] + 50257 + 1024)
    free = shutil.disk_usage(tmp_path).free
    if free < 1.5 * file_size:
        pytest.skip(f"{name}: writing its {file_size / 2**30:.1f} GiB checkpoint needs more "
                    f"than the {free / 2**30:.1f} GiB free in {tmp_path}")
    folder = make_checkpoint(tmp_path / name, initializer_range=0.02, **shape)
    try:
        check_size(name, folder, tmp_path / "logits.npy", capsys)
    finally:
        shutil.rmtree(folder)   # up to 6 GB: not left for pytest to keep after the session


def check_size(name, folder, logits_file, capsys):
    run = subprocess.run([sys.executable, "-c", OURS_IN_A_FRESH_PROCESS, str(folder),
                          str(logits_file)], capture_output=True, text=True, check=True)
    rss_before, rss_peak = map(int, run.stdout.split())
    size = (folder / "model.safetensors").stat().st_size
    with capsys.disabled():
        print(f"\n{name}: file {size / 2**20:.0f} MiB; gpt2numba peak RSS "
              f"{rss_peak / 2**20:.0f} MiB ({rss_before / 2**20:.0f} MiB after imports), "
              f"{rss_peak / size:.2f}x the file")
    theirs = reference_model(folder)
    with torch.no_grad():
        expected = theirs(torch.tensor([list(range(1000, 1008))])).logits[0].numpy()
    assert relative_error(np.load(logits_file), expected) <= 1e-4
