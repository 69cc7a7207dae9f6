"""Numba's disk cache of the kernels, beside the policy that decides it (_jit.py): whether it
already holds a kernel, the wall-clock intervals Numba spends compiling, and the cache's
notices, each said once per process; and a lock on the cache, for processes that start at once.

The first two take dispatchers (what @kernel returns) and know nothing of which kernels a model
calls.
Numba has no public way to ask its cache what it holds; `_cache_index` is the one place that
uses its private API, so a Numba upgrade that changes it breaks one function.
"""

import logging
import os
from contextlib import contextmanager

try:
    import fcntl
except ImportError:  # not a POSIX system: no lock (cache_lock)
    fcntl = None

from numba.core import event

log = logging.getLogger(__name__)
LOCK_FILE = "gpt2numba-compile.lock"   # in the cache folder, beside Numba's .nbi/.nbc files
_said = set()  # the notices already written by this process, and their templates


def _cache_index(dispatcher) -> dict:
    """The entries Numba's disk cache index holds for `dispatcher`, as Numba would read them.

    The index file lives under NUMBA_CACHE_DIR when it is set, else in `__pycache__` beside the
    source. Numba returns no entries when the file is missing, was written by another Numba
    version, or is stale for the current source file (its mtime and size): its own freshness
    test. A dispatcher without cache=True, or an index that cannot be read, gives none either.
    """
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if cache_file is None:
        return {}
    try:
        return cache_file._load_index()
    except Exception:  # an unreadable or foreign index: Numba would compile
        return {}


def is_cached(dispatcher) -> bool:
    """True when the disk cache holds a current entry for `dispatcher`, so that a new process
    loads it instead of compiling. A heuristic: it does not check the entry's signatures
    against the next call's, nor the CPU the entry was compiled for."""
    return bool(_cache_index(dispatcher))


def all_cached(dispatchers) -> bool:
    """True when every one of `dispatchers` is_cached."""
    return all(is_cached(dispatcher) for dispatcher in dispatchers)


def cache_is_writable(dispatchers) -> bool:
    """True when every one of `dispatchers` has a disk cache in a folder this process may write
    (not one kept in memory only, not a read-only NUMBA_CACHE_DIR)."""
    for dispatcher in dispatchers:
        path = getattr(getattr(dispatcher, "_cache", None), "cache_path", None)
        if path is None or not os.access(path, os.W_OK):
            return False
    return True


def compile_intervals(buffer) -> list[tuple[float, float]]:
    """The outermost (start, end) wall-clock times of the "numba:compile" events in `buffer`.

    `buffer` is `numba.core.event.install_recorder("numba:compile").buffer`: (time.time(),
    Event) pairs. Compiling a kernel compiles the functions it calls inside its own event, so
    only the outermost intervals are counted. A kernel loaded from the disk cache sends no event.
    """
    intervals, depth, start = [], 0, 0.0
    for stamp, ev in buffer:
        if ev.is_start:
            if depth == 0:
                start = stamp
            depth += 1
        elif ev.is_end and depth > 0:
            depth -= 1
            if depth == 0:
                intervals.append((start, stamp))
    return intervals


@contextmanager
def recording_compiles():
    """Record Numba's compiles while the block runs. Yields a list that, once the block has
    ended, holds their compile_intervals: (start, end) pairs of time.time()."""
    intervals = []
    with event.install_recorder("numba:compile") as recorder:
        try:
            yield intervals
        finally:
            intervals.extend(compile_intervals(recorder.buffer))


def say_once(message, *args, logger=log):
    """Log the warning `message % args` on `logger`, unless this process has said the same text,
    or another text of the same `message` template, before. A compiling process's line relayed
    here (compiler_process.py) comes as text alone, so the notice that both processes meet
    (a full disk, say) is said once."""
    text = message % args if args else message
    if message in _said or text in _said:
        return
    _said.update((message, text))
    logger.warning("%s", text)


@contextmanager
def cache_lock(dispatchers):
    """Hold an exclusive lock on the disk cache folder of `dispatchers` while the block runs.

    Numba's cache is not safe for processes that compile into one folder at once (numba issue
    10128: an index written by one while another reads or rewrites it). Processes that all
    compile inside this lock take turns: the first compiles, the others wait, then find the
    entries whole and load them. A flock on LOCK_FILE in the folder (a shared folder too, where
    its file system supports flock) is released when the process ends, however it ends. Where
    the folder cannot be written there is nothing to race for, and no lock is taken.
    """
    folders = {getattr(getattr(d, "_cache", None), "cache_path", None) for d in dispatchers}
    folders.discard(None)
    descriptors = []
    try:
        for folder in sorted(folders) if fcntl is not None else ():
            try:
                descriptor = os.open(os.path.join(folder, LOCK_FILE), os.O_RDWR | os.O_CREAT,
                                     0o666)
            except OSError:  # a read-only cache: loaded from, never written
                continue
            descriptors.append(descriptor)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        for descriptor in descriptors:
            os.close(descriptor)   # closing releases the lock
