import os
import sys
import tempfile
from pathlib import Path

import pytest

from support.paths import TESTS_DIR, VOCAB_DIR

pytest_plugins = ["support.hub_server"]  # the local Hub fixture `hub`, for every test module

if sys.version_info < (3, 11):
    pytest.exit("the test suite needs Python 3.11 or newer (PYTHONSAFEPATH, below)", returncode=4)
# Every Python the tests start (`python -c`, `python -m gpt2numba`, the CLI, a venv's python)
# leaves its current folder off sys.path, so that none of them imports the repository's kernels/
# in place of PyPI's or runs a file of the folder it was started in; it finds `support` through
# PYTHONPATH. The tests of gpt2numba's own children remove PYTHONSAFEPATH, as a user has none.
os.environ["PYTHONSAFEPATH"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR),
                                                         os.environ.get("PYTHONPATH")]))

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
def compiled_cache() -> Path:
    """The session's Numba cache with every kernel compiled, for the model's types
    (gpt2numba.compile()): a test copies it where a first run would only fill a cache."""
    import gpt2numba

    gpt2numba.compile()
    return Path(os.environ["NUMBA_CACHE_DIR"])


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A 2-layer GPT-2 (n_embd 64, n_positions 128, the real vocabulary) saved by transformers."""
    from support.checkpoints import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def home(tmp_path_factory) -> Path:
    """An empty HF_HOME for CLI runs on local folders (offline: nothing is downloaded into it)."""
    return tmp_path_factory.mktemp("cli-hf-home")


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from gpt2numba import GPT2

    return GPT2.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="session")
def serve_checkpoint(tmp_path_factory) -> Path:
    """The tiny GPT-2 with GPT-2's 1024 positions, for the servers of tests/test_serve*.py."""
    from support.checkpoints import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("serve-gpt2"), n_positions=1024)


@pytest.fixture(scope="module")
def server(serve_checkpoint, home):
    """`gpt2numba serve` on serve_checkpoint with one thread, one per test module that asks for
    it (test_serve.py has its own, with a key and a small queue); it must exit 0 at the end."""
    from support.serving import start_server

    server = start_server(serve_checkpoint, home, "--threads", 1)
    yield server
    assert server.stop() == 0, "".join(server.stderr)
