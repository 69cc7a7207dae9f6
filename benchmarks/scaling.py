"""How the parallel kernels use the threads of a big machine, and the forward's speed at 1, 2, ...
threads up to this machine's cores, against transformers at the same thread counts.

    cd /tmp && python /path/to/gpt2numba/benchmarks/scaling.py [--model FOLDER_OR_NAME]

First, for each parallel kernel (each `prange` loop in kernels/) at gpt2's and gpt2-xl's shapes
and 16, 128 and 1024 tokens: its independent pieces and the share of 8, 16, 32 and 64 threads they
can keep busy. The products and the head hand their pieces out one at a time
(kernels/pieces.py), the other kernels an equal run of consecutive pieces per thread (Numba's
own schedule): either way, with equal pieces and threads, a region lasts as long as the thread
with the most, and the share is pieces / (ceil(pieces / threads) * threads)
(linear.busy_share). Each kernel's piece count is a function below that imports the kernel's
own constants, so it follows the kernels; where a kernel chooses its split from the thread
count (linear, projection), the count is given per thread count.

Then W1 (one forward of n tokens, last-row logits) at 1, 2, 4, ... threads up to the cores this
process may run on (and that count itself), transformers and gpt2numba in alternation, medians
of --repeats: milliseconds, the ratio (transformers / gpt2numba: above 1 means gpt2numba is
faster) and each one's speed-up over its own 1-thread time. Without --model, a random-init 124M
checkpoint is written by transformers into a temporary folder. Run it from outside the
repository (its kernels/ folder would shadow PyPI's `kernels`, which transformers imports), on a
quiet machine. --repeats 1 --lengths 16 --max-threads 2 checks that it runs; --pieces-only
prints the first part alone.
"""

import argparse
import os
import tempfile
import time

import numba
from random_checkpoint import add_model_argument, checkpoint_folder, transformers_with_threads

from gpt2numba import GPT2
from gpt2numba.bench_workload import our_w1, their_w1, time_calls
from gpt2numba.kernels.attention import ROWS as ATTENTION_ROWS
from gpt2numba.kernels.finite import CHUNK
from gpt2numba.kernels.linear import busy_share, split
from gpt2numba.kernels.outer_tile import COLUMNS
from gpt2numba.kernels.projection import projection_split

MODELS = {"gpt2": dict(n_embd=768, n_head=12), "gpt2-xl": dict(n_embd=1600, n_head=25)}
VOCAB = 50257
LENGTHS = (16, 128, 1024)
TABLE_THREADS = (8, 16, 32, 64)


def linear_pieces(n, n_out, threads):
    """linear on x [n, in] -> [n, n_out]: its panels times its blocks of rows (linear.split)."""
    panels, rows = split(n, n_out, threads)
    return panels * -(-n // rows)


def projection_pieces(n, n_out, threads):
    """projection on x [n, in] -> [n, n_out]: its panels times its blocks of rows, at most
    BLOCK_ROWS of them (projection.projection_split)."""
    panels, rows = projection_split(n, n_out, threads)
    return panels * -(-n // rows)


def attention_pieces(n, n_head, threads):
    """causal_self_attention on one text of n tokens: each head's blocks of ATTENTION_ROWS
    query rows (of unequal cost, taken cheap and dear in turn, so that a thread's run of them
    costs about as much as any other's: counted here as equal pieces)."""
    return n_head * -(-n // ATTENTION_ROWS)


def row_pieces(n, threads):
    """embedding, layernorm, gelu, residual, softmax, log_softmax_at, head_log_softmax_at's join
    of its panels: one piece per row."""
    return n


def first_nonfinite_pieces(size, threads):
    """first_nonfinite on `size` floats: chunks of CHUNK; one serial scan up to CHUNK."""
    return -(-size // CHUNK) if size > CHUNK else 1


def pack_pieces(n_in, n_out, threads):
    """pack_checked of a [n_in, n_out] weight: groups of COLUMNS columns."""
    return -(-n_out // COLUMNS)


def forward_kernels(n_embd, n_head, n):
    """(label, pieces at a thread count) of every parallel call in a forward of n tokens."""
    e = n_embd
    return [
        (f"rows: embedding, layernorm, gelu, residual [{n}, *]", lambda t: row_pieces(n, t)),
        (f"projection attn.c_attn [{n}, {e}] -> {3 * e}",
         lambda t: projection_pieces(n, 3 * e, t)),
        (f"causal_self_attention {n_head} heads x {ATTENTION_ROWS} rows",
         lambda t: attention_pieces(n, n_head, t)),
        (f"projection attn.c_proj [{n}, {e}] -> {e}", lambda t: projection_pieces(n, e, t)),
        (f"projection mlp.c_fc [{n}, {e}] -> {4 * e}",
         lambda t: projection_pieces(n, 4 * e, t)),
        (f"projection mlp.c_proj [{n}, {4 * e}] -> {e}",
         lambda t: projection_pieces(n, e, t)),
        (f"linear head, every row [{n}, {e}] -> {VOCAB}", lambda t: linear_pieces(n, VOCAB, t)),
        (f"linear head, last row [1, {e}] -> {VOCAB}", lambda t: linear_pieces(1, VOCAB, t)),
        (f"head_log_softmax_at (scoring) [{n}, {e}] -> {VOCAB}",
         lambda t: linear_pieces(n, VOCAB, t)),
        (f"head_log_softmax_at, its panels joined [{n}, *]", lambda t: row_pieces(n, t)),
    ]


def load_kernels(n_embd):
    """(label, pieces at a thread count) of the parallel calls of a load (not per token)."""
    e = n_embd
    return [
        (f"first_nonfinite wte [{VOCAB}, {e}]", lambda t: first_nonfinite_pieces(VOCAB * e, t)),
        (f"pack_checked mlp.c_fc [{e}, {4 * e}]", lambda t: pack_pieces(e, 4 * e, t)),
        (f"pack_checked attn.c_proj [{e}, {e}]", lambda t: pack_pieces(e, e, t)),
    ]


def print_rows(kernels):
    for label, pieces in kernels:
        cells = "".join(f"{pieces(t):>8}{busy_share(pieces(t), t):>6.2f}" for t in TABLE_THREADS)
        print(f"  {label:52}{cells}")


def print_pieces(lengths):
    header = "".join(f"{f'{t} threads':>14}" for t in TABLE_THREADS)
    print(f"independent pieces and the share of the threads they keep busy\n{'':54}{header}")
    for model, shape in MODELS.items():
        for n in lengths:
            print(f"{model}, {n} tokens")
            print_rows(forward_kernels(shape["n_embd"], shape["n_head"], n))
        print(f"{model}, load")
        print_rows(load_kernels(shape["n_embd"]))


def thread_counts(most):
    """1, 2, 4, ... below `most`, then `most`."""
    counts = [1]
    while counts[-1] * 2 < most:
        counts.append(counts[-1] * 2)
    return counts + [most] if most > 1 else counts


def measure(folder, torch, transformers, lengths, repeats, most):
    ours = GPT2.from_pretrained(folder)
    theirs = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    times = {}
    with torch.no_grad():
        for n in lengths:
            for threads in thread_counts(most):
                torch.set_num_threads(threads)
                ours.threads = threads
                their = time_calls(their_w1(theirs, n), repeats).median
                time.sleep(0.3)
                mine = time_calls(our_w1(ours, n), repeats).median
                times[n, threads] = their, mine
    return times


def print_times(times, lengths, most):
    print(f"\nW1 forward, last-row logits, median ms; speed-up over the same engine's 1 thread"
          f"\n{'tokens':>6}{'threads':>8}{'transformers':>14}{'gpt2numba':>11}{'ratio':>7}"
          f"{'speed-up: transformers':>24}{'gpt2numba':>11}")
    for n in lengths:
        their_1, our_1 = times[n, 1]
        for threads in thread_counts(most):
            their, mine = times[n, threads]
            print(f"{n:>6}{threads:>8}{their * 1e3:>14.1f}{mine * 1e3:>11.1f}{their / mine:>7.2f}"
                  f"{their_1 / their:>24.2f}{our_1 / mine:>11.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--max-threads", type=int,
                        help="the most threads to measure (default: the cores this process may "
                             "run on)")
    parser.add_argument("--pieces-only", action="store_true",
                        help="print the pieces and shares, measure nothing")
    args = parser.parse_args(argv)
    print_pieces(args.lengths)
    if args.pieces_only:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    most = min(args.max_threads or cores, numba.config.NUMBA_NUM_THREADS)
    if most < (args.max_threads or cores):
        print(f"\nNumba has {numba.config.NUMBA_NUM_THREADS} threads (NUMBA_NUM_THREADS): "
              f"measuring up to {most}")
    peers = transformers_with_threads("scaling.py", 1)
    if peers is None:
        return
    torch, transformers = peers
    with tempfile.TemporaryDirectory(prefix="gpt2numba-scaling-") as scratch:
        folder = checkpoint_folder(args.model, scratch)
        times = measure(folder, torch, transformers, args.lengths, args.repeats, most)
    print(f"\ntransformers {transformers.__version__} / torch {torch.__version__} against "
          f"gpt2numba (numba {numba.__version__}, {numba.threading_layer()} layer), "
          f"{cores} cores this process may run on, {os.cpu_count()} on the machine")
    print_times(times, args.lengths, most)


if __name__ == "__main__":
    main()
