"""What checking every weight for NaN and inf adds to a load.

    python benchmarks/finite_scan.py [--model FOLDER_OR_NAME] [--threads 2] [--repeats 5]

Without --model, a random-init 124M GPT-2 is written by transformers into a temporary folder.
Loads GPT2.from_pretrained in this process (kernels compiled once before timing, the file's
pages in the OS cache after the first load), alternately as it is and with model.check_finite
replaced by a no-op, and prints the medians and the difference as a share of the load (the
target is under 5 %). The scan alone, timed on freshly mapped tensors, is printed too: it is
larger than what the check adds, because the first touch of each mapped page is paid by
whatever reads it first, the scan or, without it, the transpose right after. Run it on a quiet
machine.
"""

import argparse
import tempfile
import time

import numba
import numpy as np
from random_checkpoint import checkpoint_folder

from gpt2numba import GPT2, GPT2Config, model
from gpt2numba.model import check_finite
from gpt2numba.weights import load_tensors


def seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def scan_seconds(folder, config):
    """check_finite alone, on tensors mapped just before (as in the load)."""
    tensors = load_tensors(folder, config)
    return seconds(lambda: check_finite(tensors, folder))


def main(argv=None):
    """Print the median load, the median scan and the scan's share of the load."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model",
                        help="checkpoint folder or Hub name (default: a random 124M checkpoint)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    numba.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        folder = checkpoint_folder(args.model, scratch)
        GPT2.from_pretrained(folder)  # compiles the kernels, warms the page cache
        config = GPT2Config.from_folder(folder)
        checked, unchecked = [], []
        for _ in range(args.repeats):
            checked.append(seconds(lambda: GPT2.from_pretrained(folder)))
            model.check_finite = lambda tensors, folder: None
            try:
                unchecked.append(seconds(lambda: GPT2.from_pretrained(folder)))
            finally:
                model.check_finite = check_finite
        scan = float(np.median([scan_seconds(folder, config) for _ in range(args.repeats)]))
        size = (folder / "model.safetensors").stat().st_size
    load, without = float(np.median(checked)), float(np.median(unchecked))
    print(f"{folder}, {args.threads} threads, median of {args.repeats}, loads interleaved")
    print(f"  GPT2.from_pretrained                  {load * 1e3:8.1f} ms")
    print(f"  the same without check_finite         {without * 1e3:8.1f} ms")
    print(f"  what the check adds                   {(load - without) * 1e3:8.1f} ms  "
          f"{100 * (load - without) / load:5.1f} % of the load")
    print(f"  check_finite alone, on fresh mappings {scan * 1e3:8.1f} ms  "
          f"({size / scan / 1e9:.1f} GB/s, first touch of every page included)")

if __name__ == "__main__":
    main()
