"""What checking every weight for NaN and inf adds to a load.

    python benchmarks/finite_scan.py [--model FOLDER_OR_NAME] [--threads 2] [--repeats 15]

Without --model, a random-init 124M GPT-2 is written by transformers into a temporary folder.
Loads GPT2.from_pretrained in this process (kernels compiled once before timing, the file's
pages in the OS cache after the first load), in turn as it is, with every check removed (the
projections packed by `plain_pack` below, pack_checked's loops without the check,
and no tensor scanned), and with NumPy's checks (numpy_checks: a machine's first run, before the
kernels are compiled). Prints the medians and what the checks add as a share of the load (the
target is under 5 %): the median of the differences within each round, which a drifting
machine disturbs less than the difference of the medians. Run it on a quiet machine.
"""

import argparse
import contextlib
import tempfile
import time
from types import SimpleNamespace

import numba
import numpy as np
from numba import njit, prange
from random_checkpoint import add_model_argument, checkpoint_folder

import gpt2numba.kernels
from gpt2numba import GPT2, numpy_checks, params
from gpt2numba.kernels.outer_tile import COLUMNS


@njit(parallel=True, nogil=True)
def plain_pack(w):
    """pack_checked's copy without its check: w [in, out] -> (packed, -1), packed
    [ceil(out / COLUMNS), in, COLUMNS] with packed[g, p, c] = w[p, g * COLUMNS + c], 0 after."""
    n_in, n_out = w.shape
    groups = (n_out + COLUMNS - 1) // COLUMNS
    packed = np.empty((groups, n_in, COLUMNS), dtype=np.float32)
    for g in prange(groups):
        j0 = g * COLUMNS
        width = min(COLUMNS, n_out - j0)
        for p in range(n_in):
            for c in range(width):
                packed[g, p, c] = w[p, j0 + c]
            for c in range(width, COLUMNS):
                packed[g, p, c] = 0.0
    return packed, -1


NO_CHECKS = SimpleNamespace(pack_checked=plain_pack, first_nonfinite=lambda x: -1)
LOADS = {"kernels": gpt2numba.kernels, "none": NO_CHECKS, "numpy": numpy_checks}


@contextlib.contextmanager
def loading_with(checks):
    """GPT2.from_pretrained checks and packs the weights with `checks` meanwhile."""
    saved = params.load_checks
    params.load_checks = lambda: checks
    try:
        yield
    finally:
        params.load_checks = saved


def load_seconds(folder, checks):
    with loading_with(checks):
        start = time.perf_counter()
        GPT2.from_pretrained(folder)
        return time.perf_counter() - start


def main(argv=None):
    """Print the median load with and without the checks, and what they add."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    numba.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        folder = checkpoint_folder(args.model, scratch)
        for checks in LOADS.values():  # compiles the kernels, warms the page cache
            load_seconds(folder, checks)
        seconds = {name: [] for name in LOADS}
        for _ in range(args.repeats):
            for name, checks in LOADS.items():
                seconds[name].append(load_seconds(folder, checks))
    load, without, first_run = (float(np.median(seconds[name])) for name in LOADS)
    adds = float(np.median(np.subtract(seconds["kernels"], seconds["none"])))
    print(f"{folder}, {args.threads} threads, median of {args.repeats}, loads interleaved")
    print(f"  GPT2.from_pretrained           {load * 1e3:8.1f} ms")
    print(f"  the same without any check     {without * 1e3:8.1f} ms")
    print(f"  what the checks add            {adds * 1e3:8.1f} ms  "
          f"{100 * adds / load:5.1f} % of the load (median of the {args.repeats} rounds)")
    print(f"  with NumPy's checks (1st run)  {first_run * 1e3:8.1f} ms  "
          f"{first_run / load:5.2f}x the load with the kernels")


if __name__ == "__main__":
    main()
