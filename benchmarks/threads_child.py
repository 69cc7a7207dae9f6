"""threads.py's child: one threading layer (a process has one), so one process per layer.

    python benchmarks/threads_child.py FOLDER REPEATS

Prints as JSON the layer Numba used and the median of REPEATS next_token_logits (after one
warm-up) per (thread setting, length) of threads.py: 1 and 2 threads, and ThreadCount's choice
("auto") made again before every call.
"""

import json
import sys
import time

import numba
import numpy as np
from threads import LENGTHS, SETTINGS

from gpt2numba import GPT2
from gpt2numba.bench_workload import w1_ids
from gpt2numba.kernels.threads import ThreadCount


def main(folder, repeats):
    """Print the JSON report."""
    model = GPT2.from_pretrained(folder)
    count, result = ThreadCount(), {}
    for setting in SETTINGS:
        for n in LENGTHS:
            ids = w1_ids(n)
            seconds = []
            for _ in range(repeats + 1):
                numba.set_num_threads(count() if setting == "auto" else int(setting))
                start = time.perf_counter()
                model.next_token_logits(ids)
                seconds.append(time.perf_counter() - start)
            result[f"{setting}/{n}"] = float(np.median(seconds[1:]))
    print(json.dumps({"layer": numba.threading_layer(), "medians": result}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
