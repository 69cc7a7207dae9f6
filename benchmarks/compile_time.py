"""Where the first run's compile time goes, kernel by kernel, in CPU seconds.

    python benchmarks/compile_time.py [--threads 2]

Runs a fresh process (compile_time_child.py) with an empty NUMBA_CACHE_DIR that imports the package
and calls `gpt2numba.compile()` (every kernel the load, the forward and scoring call, with the
types the model calls them with), then one forward of a tiny GPT-2, which must compile nothing more
(sizes do not change the machine code); then a second fresh process on the now populated cache. The
first prints, for every function Numba compiles, its CPU seconds (time.process_time: other
processes on the machine disturb it less than wall time) excluding the functions it compiled on the
way (the helpers compiled on first use by a kernel are listed under their own name), and the number
of versions compiled. The second gives what loading the cached machine code costs instead.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run_child(cache_dir, threads, how):
    """One fresh process on cache_dir, compiling in one process or as a first run does (two):
    its JSON report."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NUMBA_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, Path(__file__).with_name("compile_time_child.py"), how],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main(argv=None):
    """Print the per-function compile table, then the cached start for comparison."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpt2numba-compile-time-") as cache_dir:
        cold = run_child(cache_dir, args.threads, "one-process")
        warm = run_child(cache_dir, args.threads, "two-processes")
    with tempfile.TemporaryDirectory(prefix="gpt2numba-compile-time-") as cache_dir:
        two = run_child(cache_dir, args.threads, "two-processes")
    print(f"empty JIT cache, {args.threads} threads: CPU seconds per compiled function "
          f"(excluding what it compiled on the way)")
    print(f"  {'function':40} {'CPU s':>7} {'versions':>9}")
    for name, seconds in sorted(cold["seconds"].items(), key=lambda item: -item[1]):
        print(f"  {name:40} {seconds:7.2f} {cold['versions'][name]:>9}")
    compiled = sum(cold["seconds"].values())
    print(f"  {'all compiles':40} {compiled:7.2f}")
    print(f"  {'gpt2numba.compile(), one process':40} {cold['compile']:7.2f}   "
          f"({cold['wall']:.2f} s wall)")
    print(f"  {'import of the package':40} {cold['import']:7.2f}")
    print(f"  functions compiled by the forward after compile(): {cold['forward_compiles']}")
    print(f"empty JIT cache, as a first run compiles (in two other processes): "
          f"gpt2numba.compile() {two['wall']:.2f} s wall")
    print(f"populated JIT cache: gpt2numba.compile() {warm['compile']:.2f} CPU s "
          f"({warm['wall']:.2f} s wall), import {warm['import']:.2f} CPU s")


if __name__ == "__main__":
    main()
