"""Where the tests find things (importable without pytest's conftest).

The test processes put TESTS_DIR on sys.path (pytest's `pythonpath`, PYTHONPATH for the
children), never REPO_ROOT: the repository's top-level `kernels/` would shadow PyPI's `kernels`
package, which transformers imports, and the code under test must be the installed gpt2numba.
"""

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent

# The real GPT-2 vocab.json and merges.txt: ../shared/gpt2-vocab beside the clone.
VOCAB_DIR = REPO_ROOT.parent / "shared" / "gpt2-vocab"
