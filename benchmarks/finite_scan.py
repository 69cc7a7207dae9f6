"""The cost of checking every weight for NaN and inf at load, against the whole load.

    python benchmarks/finite_scan.py [--model FOLDER_OR_NAME] [--threads 2] [--repeats 5]

Without --model, a random-init 124M GPT-2 is written by transformers into a temporary folder.
Each load is GPT2.from_pretrained in this process (kernels compiled once before timing, pages
of the file in the OS cache after the first load); the scan is model.check_finite over the
freshly mapped tensors. Prints medians of --repeats and the scan's share of the load (the
target is under 5 %). Run it on a quiet machine.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from gpt2numba import GPT2, GPT2Config
from gpt2numba.model import check_finite
from gpt2numba.weights import load_tensors, resolve


def checkpoint_folder(model, scratch):
    if model:
        return Path(resolve(model))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the clone: tests/ writes it
    from tests.support.checkpoints import SHAPES, make_checkpoint
    print("writing a random-init 124M checkpoint with transformers...", flush=True)
    return make_checkpoint(Path(scratch) / "gpt2-random", initializer_range=0.02, **SHAPES["gpt2"])


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
        load = float(np.median([seconds(lambda: GPT2.from_pretrained(folder))
                                for _ in range(args.repeats)]))
        scan = float(np.median([scan_seconds(folder, config) for _ in range(args.repeats)]))
        size = (folder / "model.safetensors").stat().st_size
    print(f"{folder}, {args.threads} threads, median of {args.repeats}")
    print(f"  GPT2.from_pretrained       {load * 1e3:8.1f} ms")
    print(f"  check_finite (in the load) {scan * 1e3:8.1f} ms  {100 * scan / load:5.1f} % of the "
          f"load, {size / scan / 1e9:.1f} GB/s")


if __name__ == "__main__":
    main()
