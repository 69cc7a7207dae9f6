"""Which threads run the parallel kernels: Numba's threading layer, and how many threads.

The layer is tbb, chosen by measurement (`python benchmarks/threads.py` prints the comparison):
- omp, GNU OpenMP (what Numba picks from the PyPI wheels when tbb is absent), is not fork-safe:
  a `multiprocessing` fork child after a parallel region prints "Terminating: fork() called
  from a process already using GNU OpenMP" and dies, and a Pool hangs. Its idle threads spin,
  so beside another busy process two threads run slower than one.
- workqueue is fork-safe but not safe for two Python threads, and the slowest on a quiet machine.
- tbb is fork-safe and thread-safe, as fast as omp on a quiet machine and faster under load.
PyPI's tbb wheel installs libtbb.so.12 into <prefix>/lib, where the dynamic loader does not
look, so Numba would report "No threading layer could be loaded": `use_tbb` preloads it.
A NUMBA_THREADING_LAYER set by the user is left as it is.

How many: a parallel region lasts as long as its slowest thread. When other processes keep
cores busy, a thread that shares a core makes every region wait for it, and two threads end up
slower than one. `ThreadCount` therefore counts the cores other processes used since it was
last asked (from the lines of /proc/stat of the CPUs this process may run on, minus this
process's own CPU time) and uses only the idle ones of those CPUs, at least one. Where
/proc/stat cannot be read or parsed, it uses every CPU this process may run on. Nothing reads
/proc/stat before the first ThreadCount.start() or choice, so a model given its thread count
never does.
"""

import ctypes
import importlib.metadata
import os
import threading
import time

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.ufunc.parallel import _launch_threads

# Another process's usage below this share of a core leaves the core counted as idle: a shell,
# a logger or the desktop should not halve the speed of a quiet machine.
IDLE_CORE_SHARE = 0.5
PROC_STAT = "/proc/stat"


def use_tbb():
    """Make tbb Numba's threading layer when the tbb package is installed; False otherwise."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return False
    try:
        files = importlib.metadata.files("tbb") or []
    except importlib.metadata.PackageNotFoundError:
        return False
    library = next((f.locate() for f in files if f.name == "libtbb.so.12"), None)
    if library is None:
        return False
    try:
        ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    numba.config.THREADING_LAYER = "tbb"
    return True


def start_threads_from_main_thread():
    """Start Numba's threading layer now, when the kernels are imported by the main thread.

    Otherwise it starts at the first parallel call, in whichever thread makes it; and when that
    thread is not the main one (the load's wte scan, a server's worker) and has ended, tbb waits
    forever at the process's exit on a machine with one core (unload_tbb waits for a task that
    no thread is left to run).
    """
    if threading.current_thread() is threading.main_thread():
        _launch_threads()


@intrinsic
def threads_now(typingctx):
    """Inside a kernel: the number of threads its parallel loops run on now (the calling
    thread's numba.set_num_threads). numba.get_num_threads() compiled into a kernel calls the
    threading layer through a ctypes pointer, and Numba does not cache a function that holds
    one; this calls the layer's get_num_threads by its symbol's name, as Numba's own parallel
    loops do."""
    _launch_threads()   # the layer's symbols are known to LLVM from here on

    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(cgutils.intp_t, []), "get_num_threads")
        return builder.call(function, [])

    return types.intp(), codegen


def allowed_cpus() -> set:
    """The numbers of the CPUs this process may run on (its affinity mask, where the system has
    one; else every CPU)."""
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def busy_ticks(lines, cpus):
    """The clock ticks the CPUs numbered `cpus` spent busy, from the lines of /proc/stat
    ("cpu<n> user nice system idle iowait irq softirq steal ..."), or None when a line of one of
    them is missing or malformed. The CPU lines come first, so reading stops at the first line
    after them."""
    ticks = {}
    for line in lines:
        name, *fields = line.split() or [""]
        if not name.startswith("cpu"):
            break
        values = fields[:8]
        if name[3:].isdecimal() and len(values) == 8 and all(v.isdecimal() for v in values):
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, values)
            ticks[int(name[3:])] = user + nice + system + irq + softirq + steal
    if not cpus <= ticks.keys():
        return None
    return sum(ticks[cpu] for cpu in cpus)


def _busy_seconds():
    """(CPU seconds all processes spent busy on the CPUs this process may use, CPU seconds of
    this process, wall time), or None where PROC_STAT cannot be read or parsed."""
    try:
        with open(PROC_STAT, encoding="ascii", errors="replace") as stat:
            ticks = busy_ticks(stat, allowed_cpus())
    except OSError:
        return None
    if ticks is None:
        return None
    own = os.times()
    return ticks / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.monotonic()


class ThreadCount:
    """Chooses the thread count of each parallel call from the load other processes put on the
    machine since the previous choice (see the module docstring)."""

    def __init__(self, sample=_busy_seconds):
        self._sample = sample
        self._last = None

    def start(self):
        """Measure from now, unless measuring has begun; the first choice then knows the load
        since this call. Returns self."""
        if self._last is None:
            self._last = self._sample()
        return self

    def others_busy_cores(self):
        """Cores' worth of CPU time other processes used since the last call or start (0.0 if
        unknown)."""
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None or now[2] - last[2] <= 0:
            return 0.0
        busy, own, wall = (a - b for a, b in zip(now, last))
        return max(0.0, (busy - own) / wall)

    def __call__(self, most=None):
        """Threads to use now: the idle cores of those this process may use, at least 1, at most
        `most` (Numba's maximum)."""
        most = most or numba.config.NUMBA_NUM_THREADS
        cores = len(allowed_cpus())
        others = self.others_busy_cores()
        busy_cores = int(others + (1 - IDLE_CORE_SHARE))  # rounds a share above 0.5 up to a core
        return max(1, min(most, cores - busy_cores))
