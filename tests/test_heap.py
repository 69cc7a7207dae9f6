"""A long forward reuses the pages of the arrays it freed (gpt2numba/heap.py): counted as the
minor page faults of a fresh process's third 1024-token forward, which were thousands when
glibc gave the freed arrays back to the OS at every layer. The third, not the second: on a busy
machine the heap may still grow once, by one brk step (256 pages), in the second forward, after
which every forward reuses the same pages (seen with the packed projections; not explained)."""

import os
import subprocess
import sys

import pytest

from support.checkpoints import make_checkpoint

THIRD_FORWARD_FAULTS = """
import resource, sys
from gpt2numba import GPT2
model = GPT2.from_pretrained(sys.argv[1])
ids = list(range(1024))
model.next_token_logits(ids)
model.next_token_logits(ids)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
model.next_token_logits(ids)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.fixture(scope="module")
def long_context_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("n1024")
    make_checkpoint(folder, n_layer=2, n_head=4, n_embd=256, n_positions=1024)
    return folder


def third_forward_faults(folder, **env):
    done = subprocess.run([sys.executable, "-c", THIRD_FORWARD_FAULTS, str(folder)],
                          capture_output=True, text=True, timeout=300, check=True,
                          env={**os.environ, **env})
    return int(done.stdout.split()[-1])


def test_a_later_long_forward_takes_no_fresh_pages(long_context_model):
    assert third_forward_faults(long_context_model) < 50


def test_thresholds_the_user_set_are_kept(long_context_model):
    # glibc's default thresholds, set explicitly: the freed arrays go back to the OS again
    faults = third_forward_faults(long_context_model, MALLOC_MMAP_THRESHOLD_="131072",
                                   MALLOC_TRIM_THRESHOLD_="131072")
    assert faults > 500
