"""The fresh processes of `gpt2numba bench`, which bench.py starts (child_python.python_command):

    python -P -m gpt2numba.bench_fresh gpt2numba FOLDER THREADS
    python -P -m gpt2numba.bench_fresh transformers FOLDER THREADS [LENGTHS REPEATS]

Each times its import, the load of the checkpoint in FOLDER, the compile and the first forward
(the W2 prompt, whose argmax is the first generated token), and prints them as one JSON line with
its peak RSS and the wall-clock time of the first token. gpt2numba's compile is gpt2numba.compile
of the forward's kernels, which is what a first token waits for (compiling, or loading the
kernels from the cache), its progress on stderr as bench.PROGRESS lines. transformers' is 0:
PyTorch's CPU kernels are compiled ahead, into its libraries; it then adds the median warm
forward of each of LENGTHS (comma-separated) tokens over REPEATS runs. Each library in a process
of its own, so that neither library's idle worker threads slow the other's.

Only the standard library is imported before the clock starts.
"""

import json
import sys
import time


def gpt2numba_first_token(folder, threads) -> dict:
    """gpt2numba's fresh start to the first token."""
    start = time.perf_counter()
    import gpt2numba
    from gpt2numba import GPT2
    from gpt2numba.bench import PROGRESS, peak_rss_bytes
    from gpt2numba.bench_workload import W2_PROMPT
    from gpt2numba.blocks import FORWARD_KERNELS
    imported = time.perf_counter()
    model = GPT2.from_pretrained(folder, threads=threads)
    loaded = time.perf_counter()
    gpt2numba.compile(lambda k, n, name: print(PROGRESS, k, n, name, file=sys.stderr, flush=True),
                      FORWARD_KERNELS)
    compiled = time.perf_counter()
    model.next_token_logits(W2_PROMPT)
    first = time.perf_counter()
    return {"import_s": imported - start, "load_s": loaded - imported,
            "compile_s": compiled - loaded, "first_forward_s": first - compiled,
            "peak_rss_mib": peak_rss_bytes() / 2**20, "first_token_at": time.time()}


def transformers_first_token(folder, threads, lengths=(), repeats=1) -> dict:
    """transformers' fresh start to the first token, then its warm forwards (use_cache=False,
    as gpt2numba): {n: median seconds} under "forward"."""
    start = time.perf_counter()
    import torch
    torch.set_num_threads(threads)
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging

    from gpt2numba.bench_workload import W2_PROMPT, their_w1, time_calls
    imported = time.perf_counter()
    logging.disable_progress_bar()
    model = GPT2LMHeadModel.from_pretrained(folder).eval()
    loaded = time.perf_counter()
    with torch.no_grad():
        model(torch.tensor([W2_PROMPT]), use_cache=False).logits[0, -1].argmax()
    first = time.perf_counter()
    first_token_at = time.time()
    with torch.no_grad():
        forward = {n: time_calls(their_w1(model, n), repeats).median for n in lengths}
    return {"import_s": imported - start, "load_s": loaded - imported, "compile_s": 0.0,
            "first_forward_s": first - loaded, "peak_rss_mib": 0.0,
            "first_token_at": first_token_at, "forward": forward}


def main(argv):
    """Run the fresh start that argv names, print its JSON line."""
    library, folder, threads, *rest = argv
    if library == "gpt2numba":
        times = gpt2numba_first_token(folder, int(threads))
    else:
        lengths, repeats = rest if rest else ("", "1")
        times = transformers_first_token(folder, int(threads),
                                         [int(n) for n in lengths.split(",") if n], int(repeats))
    print(json.dumps(times), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
