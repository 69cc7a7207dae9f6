"""vs_transformers.py's child: `gpt2numba run ARGS...` as the console script runs it, then its own
peak RSS (VmHWM) in bytes, on the last line of its stdout.

    python benchmarks/peak_rss_of_run.py run --model FOLDER ...
"""

import sys

from gpt2numba.bench import peak_rss_bytes
from gpt2numba.cli import main

if __name__ == "__main__":
    try:
        main(sys.argv[1:], prog_name="gpt2numba")
    finally:
        print(peak_rss_bytes())
