import os
import tempfile
from pathlib import Path

import pytest

from tests.support.paths import VOCAB_DIR

pytest_plugins = ["tests.support.hub_server"]  # the local Hub fixture `hub`, for every test module

# A fresh Numba cache for every test session (subprocesses inherit it): a cached kernel that
# inlined an older version of a helper from another file would otherwise go unnoticed.
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="gpt2numba-test-numba-cache-")
os.environ.setdefault("NUMBA_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def vocab_dir() -> Path:
    """The real GPT-2 vocab.json and merges.txt, from ../shared/gpt2-vocab beside the clone."""
    assert (VOCAB_DIR / "vocab.json").is_file(), f"GPT-2 vocabulary not found at {VOCAB_DIR}"
    return VOCAB_DIR


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(os.environ["NUMBA_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A 2-layer GPT-2 (n_embd 64, n_positions 128, the real vocabulary) saved by transformers."""
    from tests.support.checkpoints import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def home(tmp_path_factory) -> Path:
    """An empty HF_HOME for CLI runs on local folders (offline: nothing is downloaded into it)."""
    return tmp_path_factory.mktemp("cli-hf-home")


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from gpt2numba import GPT2

    return GPT2.from_pretrained(tiny_checkpoint)
