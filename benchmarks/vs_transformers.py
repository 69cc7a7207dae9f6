"""gpt2numba against transformers (PyTorch, CPU) on the same checkpoint, same threads, one run.

Without --model, a random-init 124M GPT-2 is written by transformers into a temporary folder
(speed does not depend on the weights' values). Prints each measurement for both and the ratio
(transformers time / gpt2numba time: above 1 means gpt2numba is faster):
- W1: one forward of n tokens, last-row logits, n in 16, 128, 512, 1024 (median of --repeats);
- W2: greedy generation, prompt ids 1000..1015, 64 new tokens, no KV cache (use_cache=False),
  --rounds runs of each in alternation, medians compared;
- a fresh process to the first token (gpt2numba with an empty and a populated JIT cache);
- peak RSS of `gpt2numba run` (64 new tokens) against the size of the weights file.
Run it on a quiet machine: with 2 cores, any other busy process distorts both sides.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from random_checkpoint import add_model_argument, checkpoint_folder, transformers_with_threads

from gpt2numba import GPT2
from gpt2numba.bench import fresh_start, run_fresh
from gpt2numba.bench_workload import (
    W2_NEW_TOKENS,
    our_w1,
    our_w2,
    their_w1,
    their_w2,
    time_calls,
    w1_lengths,
)


def row(label, theirs, ours, unit="s"):
    scale = 1e3 if unit == "ms" else 1
    print(f"{label:44}{theirs * scale:>12.2f} {unit}{ours * scale:>12.2f} {unit}"
          f"{theirs / ours:>8.2f}x")


def their_first_token(folder, threads):
    """Seconds from transformers' import to its first token, in a fresh process of its own
    (bench_fresh.py's)."""
    times, _ = run_fresh(["transformers", folder, threads])
    return times["import_s"] + times["load_s"] + times["first_forward_s"]


def peak_rss_of_run(folder, cache_dir, threads):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    args = ["run", "--model", str(folder), "--prompt", "Hello",
            "--max-new-tokens", str(W2_NEW_TOKENS), "--threads", str(threads), "--no-color"]
    done = subprocess.run([sys.executable, Path(__file__).with_name("peak_rss_of_run.py"), *args],
                          env=env, capture_output=True, text=True, check=True)
    return int(done.stdout.splitlines()[-1])


def main(argv=None):
    """Print every measurement for transformers and gpt2numba, side by side, with the ratio."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3,
                        help="W2 runs of each, alternating (the machine's speed drifts over a "
                             "minute)")
    args = parser.parse_args(argv)
    peers = transformers_with_threads("vs_transformers.py", args.threads)
    if peers is None:
        return
    torch, transformers = peers

    with tempfile.TemporaryDirectory(prefix="gpt2numba-vs-transformers-") as scratch:
        folder = checkpoint_folder(args.model, scratch)
        cache_dir = str(Path(scratch) / "numba-cache")
        cold = fresh_start(folder, args.threads, cache_dir)
        cached = fresh_start(folder, args.threads, cache_dir)
        their_first = their_first_token(folder, args.threads)
        rss = peak_rss_of_run(folder, cache_dir, args.threads)
        file_size = (folder / "model.safetensors").stat().st_size

        ours = GPT2.from_pretrained(folder)
        theirs = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
        print(f"\ntransformers {transformers.__version__} / torch {torch.__version__} against "
              f"gpt2numba (numba {numba.__version__}, {numba.threading_layer()} layer), "
              f"{args.threads} threads, {os.cpu_count()} cores")
        print(f"{'':44}{'transformers':>14}{'gpt2numba':>14}{'ratio':>9}")
        with torch.no_grad():
            for n in w1_lengths(ours.config.n_positions):
                their = time_calls(their_w1(theirs, n), args.repeats).median
                time.sleep(0.3)
                mine = time_calls(our_w1(ours, n), args.repeats).median
                row(f"W1 forward, {n} tokens", their, mine, "ms")

        their_runs, our_runs = [], []
        works = ((their_runs, their_w2(theirs)), (our_runs, our_w2(ours)))
        for _ in range(args.rounds):
            for runs, work in works:
                time.sleep(0.3)
                start = time.perf_counter()
                new_tokens = work()
                runs.append(time.perf_counter() - start)
                assert new_tokens == W2_NEW_TOKENS
        their, mine = float(np.median(their_runs)), float(np.median(our_runs))
        row(f"W2 generate, 16 + {W2_NEW_TOKENS} tokens, greedy (median of {args.rounds})",
            their, mine)
        print(f"{'   tokens/s':44}{W2_NEW_TOKENS / their:>14.1f}{W2_NEW_TOKENS / mine:>14.1f}")
        their_each = " ".join(f"{t:.1f}" for t in their_runs)
        our_each = " ".join(f"{t:.1f}" for t in our_runs)
        print(f"{'   each run':44}{their_each:>14}{our_each:>14}")
        row("fresh process to first token, cached JIT", their_first, cached.to_first_token_s)
        row("fresh process to first token, empty JIT", their_first, cold.to_first_token_s)
        print(f"{'peak RSS of gpt2numba run / weights file':44}{'':>14}{rss / file_size:>13.2f}x"
              f"   ({rss / 2**20:.0f} MiB / {file_size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
