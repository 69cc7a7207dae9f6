"""Numba's threading layers and thread counts, on a quiet machine and beside a busy process.

    python benchmarks/threads.py [--model FOLDER_OR_NAME] [--repeats 7]

The measurement behind kernels/threads.py: next_token_logits of a 124M GPT-2 at 16 and 128
tokens, with the omp, workqueue and tbb layers (each in a fresh process: a process has one
layer), with 1 thread, 2 threads, and the automatic count (ThreadCount, what the model does
when no thread count is given). "busy" runs the same beside another process that keeps one
core busy (`while True: pass`). Prints the medians and the two ratios that matter:
- busy: auto against 1 thread (auto must never be worse than one thread);
- quiet: auto against the fastest setting of any layer.
Without --model a random-init 124M checkpoint is written by transformers into a temporary
folder. Run it on a quiet machine: nothing else may run, or the "quiet" rows are not quiet.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from random_checkpoint import add_model_argument, checkpoint_folder

LAYERS = ("omp", "workqueue", "tbb")
LENGTHS = (16, 128)
SETTINGS = ("1", "2", "auto")

def measure(folder, layer, repeats, busy):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    if layer != "tbb":  # tbb is what gpt2numba chooses by itself; the others are forced
        env["NUMBA_THREADING_LAYER"] = layer
    env["NUMBA_NUM_THREADS"] = "2"
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        if hog:
            time.sleep(1.0)
        done = subprocess.run([sys.executable, Path(__file__).with_name("threads_child.py"),
                               str(folder), str(repeats)],
                              env=env, capture_output=True, text=True, check=True)
    finally:
        if hog:
            hog.kill()
            hog.wait()
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["layer"] == layer, f"asked for {layer}, Numba used {report['layer']}"
    return report["medians"]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpt2numba-threads-") as scratch:
        folder = checkpoint_folder(args.model, scratch)
        results = {(layer, busy): measure(folder, layer, args.repeats, busy)
                   for busy in (False, True) for layer in LAYERS}
    print(f"\nnext_token_logits medians, ms (load average now: {os.getloadavg()[0]:.2f})")
    print(f"{'layer':10}{'machine':8}{'n':>5}" + "".join(f"{s + ' thr':>10}" for s in SETTINGS)
          + f"{'auto/1':>9}{'auto/best':>11}")
    for (layer, busy), medians in results.items():
        for n in LENGTHS:
            row = [medians[f"{s}/{n}"] for s in SETTINGS]
            best_quiet = min(results[(other, False)][f"{s}/{n}"]
                             for other in LAYERS for s in SETTINGS)
            print(f"{layer:10}{'busy' if busy else 'quiet':8}{n:>5}"
                  + "".join(f"{seconds * 1e3:>10.1f}" for seconds in row)
                  + f"{row[2] / row[0]:>9.2f}{row[2] / best_quiet:>11.2f}")


if __name__ == "__main__":
    main()
