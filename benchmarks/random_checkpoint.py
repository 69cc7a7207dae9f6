"""The checkpoint every benchmark runs on: --model's folder or Hub name when given, else a
random-init 124M GPT-2 written by transformers (speed does not depend on the weights' values);
and transformers itself, for the benchmarks that compare against it.

The benchmarks import it as a sibling: Python puts a script's own folder first on sys.path.
"""

import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1] / "tests"


def add_model_argument(parser):
    """--model, as checkpoint_folder reads it."""
    parser.add_argument("--model",
                        help="checkpoint folder or Hub name (default: a random 124M checkpoint)")


def checkpoint_folder(model, scratch) -> Path:
    """The folder of `model` (a folder, short name or Hub repo id), or, for None, a random
    124M checkpoint written into the folder `scratch`."""
    if model:
        from gpt2numba.weights import resolve

        return Path(resolve(model))
    sys.path.insert(0, str(TESTS_DIR))   # the clone's tests/support writes checkpoints
    from support.checkpoints import SHAPES, make_checkpoint

    print("writing a random-init 124M checkpoint with transformers...", flush=True)
    return make_checkpoint(Path(scratch) / "gpt2-random", initializer_range=0.02, **SHAPES["gpt2"])


def transformers_with_threads(script, threads):
    """(torch, transformers), with `threads` threads for torch and for gpt2numba's kernels; or
    None, after a line saying how to install them, when they are not installed (`script` compares
    against them, so it has nothing to do)."""
    try:
        import torch
        import transformers
    except ImportError:
        print(f"benchmarks/{script}: transformers and torch are not installed, nothing to compare "
              f"against; install the test extra: pip install -e '.[test]'")
        return None
    import numba

    import gpt2numba.kernels  # noqa: F401  (chooses Numba's threading layer, before it starts)

    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    return torch, transformers
