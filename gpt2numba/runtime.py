"""The machinery around the math, behind one seam: compiled kernels, threads and the heap.

The model enters `running` around every call of the kernels and `loading` around its load;
nothing else on its reading path knows how the kernels get compiled (compiling.py), how many
threads run them (kernels/threads.py) or how freed memory is kept for the next layer (heap.py).
"""

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numba

from gpt2numba import compiling
from gpt2numba.heap import keep_freed_memory
from gpt2numba.kernels.cache import recording_compiles
from gpt2numba.kernels.threads import ThreadCount

# Numba's parallel kernels may not be entered by two Python threads at once (the workqueue
# threading layer aborts; the others oversubscribe): one caller at a time per process.
_KERNELS_LOCK = threading.Lock()
# The thread count of a model given none: the cores other processes leave idle, at most the
# calling thread's Numba setting (kernels/threads.py says why). It measures from the first load
# given no count.
_IDLE_CORES = ThreadCount()


@contextmanager
def running(threads, kernels):
    """Enter around calls of `kernels` (of compiling.KERNELS), e.g. one forward.

    The kernels are ready first (compiled, loaded from Numba's disk cache, or waited for from a
    compiling process: compiling.prepare); glibc keeps freed arrays for the next layer
    (heap.py); one caller runs kernels at a time in this process; and this thread's Numba
    thread count is `threads`, or when None the cores other processes leave idle now, at most
    its own setting, which is restored on the way out.
    """
    compiling.prepare(kernels)
    keep_freed_memory()
    with _KERNELS_LOCK:
        caller_threads = numba.get_num_threads()
        numba.set_num_threads(threads or _IDLE_CORES(most=caller_threads))
        try:
            yield
        finally:
            numba.set_num_threads(caller_threads)


@dataclass(frozen=True)
class LoadReport:
    """Where the seconds of a model's load went (GPT2.load_report).

    download_seconds: fetching the files, None when none came over the network (a local folder,
    the Hugging Face cache, offline); compile_seconds: Numba compiling in this process during
    the load, None when it compiled nothing; load_seconds: the rest after the files were there
    (reading and checking the weights, the tokenizer).
    """

    download_seconds: float | None
    load_seconds: float
    compile_seconds: float | None


class LoadClock:
    """What `loading` yields: the load calls `files_ready(downloaded)` once the files are local;
    `report` is the LoadReport once the block has ended (`loading` calls `finish`)."""

    def __init__(self):
        self._start = time.perf_counter()
        self._files_ready = self._start
        self._downloaded = False
        self.report = None

    def files_ready(self, downloaded):
        """The files are local now; `downloaded`: whether any came over the network."""
        self._files_ready = time.perf_counter()
        self._downloaded = downloaded

    def finish(self, compiles):
        """Set `report`, given the (start, end) intervals Numba compiled in during the load."""
        compiled = sum(end - start for start, end in compiles)
        load = time.perf_counter() - self._files_ready - compiled
        self.report = LoadReport(
            download_seconds=self._files_ready - self._start if self._downloaded else None,
            load_seconds=max(load, 0.0), compile_seconds=compiled if compiles else None)


@contextmanager
def loading(threads):
    """Enter around a model's load, from before its files are fetched; yields a LoadClock.

    On a machine's first run the kernels start compiling in other processes now, while the
    files download and load (compiling.start_compiling); a model that will choose its own
    thread count (`threads` None) starts measuring the idle cores; Numba's compiles in this
    process are recorded for the report.
    """
    compiling.start_compiling()
    if threads is None:
        _IDLE_CORES.start()
    clock = LoadClock()
    with recording_compiles() as compiles:
        yield clock
    clock.finish(compiles)


def prepare_worker() -> int:
    """In a batch engine's worker, before its model loads: every kernel compiled or loaded
    from the node's disk cache, one worker at a time (compiling.compile_in_turn), so that
    workers starting at once compile once and never race into a half-written entry. Returns the
    number of compiles this process ran."""
    return compiling.compile_in_turn()


def load_checks():
    """What the load checks and packs the weights with (compiling.load_checks): the
    kernels when Numba's cache holds them, else their NumPy versions, so no load waits for a
    compile."""
    return compiling.load_checks()
