from pathlib import Path

import pytest

VOCAB_DIR = Path(__file__).resolve().parents[2] / "shared" / "gpt2-vocab"


@pytest.fixture(scope="session")
def vocab_dir() -> Path:
    """The real GPT-2 vocab.json and merges.txt, from ../shared/gpt2-vocab beside the clone."""
    assert (VOCAB_DIR / "vocab.json").is_file(), f"GPT-2 vocabulary not found at {VOCAB_DIR}"
    return VOCAB_DIR
