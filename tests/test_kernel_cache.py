"""kernels/cache.py: is a dispatcher in Numba's disk cache, and how long did Numba compile.

The cache probe runs in fresh processes on a small module the test writes, with its own
NUMBA_CACHE_DIR: what a new process would find is the question it answers.
"""

import os
import subprocess
import sys
import textwrap

from numba import njit

from gpt2numba.kernels.cache import compile_intervals, is_cached, recording_compiles

SQUARE = textwrap.dedent("""
    from numba import njit

    @njit(cache=True)
    def square(x):
        return x * x

    @njit
    def not_cached(x):
        return x
""")

# Prints is_cached(square) before and after calling it (argv[2] == "call"), and
# is_cached(not_cached) after calling that.
PROBE = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from square import not_cached, square
    from gpt2numba.kernels.cache import is_cached
    before = is_cached(square)
    if sys.argv[2] == "call":
        square(3.0)
    not_cached(3.0)
    print(before, is_cached(square), is_cached(not_cached))
""")


def probe(folder, cache_dir, call=True):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, "-c", PROBE, str(folder), "call" if call else "no"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_is_cached_follows_what_a_new_process_would_load(tmp_path):
    source = tmp_path / "square.py"
    source.write_text(SQUARE)
    cache_dir = tmp_path / "cache"
    assert probe(tmp_path, cache_dir) == ["False", "True", "False"]   # compiled, then written
    assert probe(tmp_path, cache_dir) == ["True", "True", "False"]    # loaded by a new process
    source.write_text(SQUARE + "\n# edited\n")                         # stale: Numba recompiles
    assert probe(tmp_path, cache_dir, call=False) == ["False", "False", "False"]
    assert probe(tmp_path, cache_dir) == ["False", "True", "False"]
    for index in cache_dir.rglob("*.nbi"):
        index.write_bytes(b"not a pickle")
    assert probe(tmp_path, cache_dir, call=False) == ["False", "False", "False"]


def test_a_function_compiled_in_the_block_gives_one_interval():
    @njit
    def twice(x):
        return 2 * x

    with recording_compiles() as compiles:
        twice(1.5)
        twice(2.5)   # compiled once, for float64
    assert len(compiles) == 1
    start, end = compiles[0]
    assert start <= end
    with recording_compiles() as again:
        twice(3.5)
    assert again == []
    assert not is_cached(twice)


class _Event:
    def __init__(self, start):
        self.is_start, self.is_end = start, not start


def test_compile_time_counts_only_the_outermost_compile_events():
    buffer = [(10.0, _Event(True)), (10.5, _Event(True)), (11.0, _Event(False)),
              (12.0, _Event(False)), (20.0, _Event(True)), (20.25, _Event(False))]
    assert compile_intervals(buffer) == [(10.0, 12.0), (20.0, 20.25)]
    assert compile_intervals([]) == []
