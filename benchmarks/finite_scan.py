"""What checking every weight for NaN and inf adds to a load.

    python benchmarks/finite_scan.py [--model FOLDER_OR_NAME] [--threads 2] [--repeats 15]

Without --model, a random-init 124M GPT-2 is written by transformers into a temporary folder.
Loads GPT2.from_pretrained in this process (kernels compiled once before timing, the file's
pages in the OS cache after the first load), alternately as it is and with every check
removed: the projections transposed by `plain_transpose` below (transpose_checked's loops without
the check), the other tensors and wte not scanned. Prints the medians and the difference as a
share of the load (the target is under 5 %): the median of the differences within each pair,
which a drifting machine disturbs less than the difference of the medians. Run it on a quiet
machine.
"""

import argparse
import contextlib
import tempfile
import time

import numba
import numpy as np
from numba import njit, prange
from random_checkpoint import add_model_argument, checkpoint_folder

from gpt2numba import GPT2, model
from gpt2numba.kernels.transpose import BAND, TILE


@njit(parallel=True, nogil=True)
def plain_transpose(w):
    """transpose_checked's copy without its check: w [in, out] -> (w.T [out, in], -1)."""
    n_in, n_out = w.shape
    wt = np.empty((n_out, n_in), dtype=np.float32)
    for band in prange((n_out + BAND - 1) // BAND):
        j0 = band * BAND
        j1 = min(j0 + BAND, n_out)
        for i0 in range(0, n_in, TILE):
            i1 = min(i0 + TILE, n_in)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    wt[j, i] = w[i, j]
    return wt, -1


@contextlib.contextmanager
def checks_removed():
    saved = model.transpose_checked, model.first_nonfinite, model.check_wte_finite
    model.transpose_checked = plain_transpose
    model.first_nonfinite = lambda x: -1
    model.check_wte_finite = lambda wte, folder: None
    try:
        yield
    finally:
        model.transpose_checked, model.first_nonfinite, model.check_wte_finite = saved


def load_seconds(folder):
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
        GPT2.from_pretrained(folder)  # compiles the kernels, warms the page cache
        with checks_removed():
            GPT2.from_pretrained(folder)  # compiles plain_transpose
        checked, unchecked = [], []
        for _ in range(args.repeats):
            checked.append(load_seconds(folder))
            with checks_removed():
                unchecked.append(load_seconds(folder))
    load, without = float(np.median(checked)), float(np.median(unchecked))
    adds = float(np.median(np.subtract(checked, unchecked)))
    print(f"{folder}, {args.threads} threads, median of {args.repeats}, loads interleaved")
    print(f"  GPT2.from_pretrained           {load * 1e3:8.1f} ms")
    print(f"  the same without any check     {without * 1e3:8.1f} ms")
    print(f"  what the checks add            {adds * 1e3:8.1f} ms  "
          f"{100 * adds / load:5.1f} % of the load (median of the {args.repeats} pairs)")


if __name__ == "__main__":
    main()
