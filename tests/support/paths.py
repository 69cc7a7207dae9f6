"""Where the tests find things outside the repository (importable without pytest's conftest)."""

from pathlib import Path

# The real GPT-2 vocab.json and merges.txt: ../shared/gpt2-vocab beside the clone.
VOCAB_DIR = Path(__file__).resolve().parents[3] / "shared" / "gpt2-vocab"
