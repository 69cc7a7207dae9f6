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

The CPUs this process may run on are its affinity mask (`taskset`, a cpuset). A container may
instead be given CPU time: a cgroup CPU quota (`docker --cpus 4`, Kubernetes' CPU limit,
systemd's CPUQuota=) lets it run on all 64 cores of its host, 4 cores' worth of time per
period, and throttles all its threads together once that is spent. Threads beyond the quota
only make every parallel region wait out the throttling, so the count is also at most the
quota, rounded up (1.5 CPUs of time keep 2 threads busy 3/4 of the time): the smaller of the
two wins. `cgroup_cpu_limit` reads the quota of this process's cgroup and of its ancestors,
cgroup v2's cpu.max and v1's cpu.cfs_quota_us; a file that is missing, unreadable or garbage
means no limit. Like /proc/stat, the files are read at a choice only, never for a model given
its thread count.
"""

import ctypes
import importlib.metadata
import math
import os
import threading
import time
from pathlib import Path

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.ufunc.parallel import _launch_threads

# Another process's usage below this share of a core leaves the core counted as idle: a shell,
# a logger or the desktop should not halve the speed of a quiet machine.
IDLE_CORE_SHARE = 0.5
PROC_STAT = "/proc/stat"
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_SELF_CGROUP = "/proc/self/cgroup"   # this process's cgroups: "id:controllers:/path" lines


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


def _read_small(path, limit=65536):
    """The first `limit` bytes of the file `path` as ASCII text (other bytes replaced), or None
    when it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read(limit).decode("ascii", errors="replace")
    except OSError:
        return None


def cpu_quota(folder) -> float | None:
    """The CPUs' worth of time the cgroup `folder` allows per period: cgroup v2's cpu.max
    ("400000 100000" is 4.0; "max 100000" is no limit) or v1's cpu.cfs_quota_us over
    cpu.cfs_period_us (-1 is no limit). None for no limit, and where the files are missing or
    hold anything else."""
    folder = Path(folder)
    v2 = _read_small(folder / "cpu.max")
    if v2 is not None:
        fields = v2.split()
        quota, period = fields if len(fields) == 2 else ("", "")
    else:
        quota = _read_small(folder / "cpu.cfs_quota_us") or ""
        period = _read_small(folder / "cpu.cfs_period_us") or ""
    quota, period = _microseconds(quota), _microseconds(period)
    return quota / period if quota and period else None


def _microseconds(text) -> int | None:
    """`text` as a count of microseconds above 0 of at most 18 digits, else None."""
    text = text.strip()
    return int(text) if text.isdecimal() and len(text) <= 18 and int(text) > 0 else None


def cpu_cgroup_folders(root, membership) -> list[Path]:
    """The folders under `root` (where the cgroup file systems are mounted) that may hold a CPU
    quota of this process: `root`, root/cpu and root/cpu,cpuacct themselves (where a container
    sees its own cgroup), then, for each line of `membership` (the file /proc/self/cgroup) of
    cgroup v2 ("0::/path") or of v1's cpu controller ("4:cpu,cpuacct:/path"), the folder of
    that cgroup and of each of its ancestors (a limit on a parent holds for its children)."""
    root = Path(root)
    folders = [root, root / "cpu", root / "cpu,cpuacct"]
    for line in (_read_small(membership) or "").splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3 or not (fields[1] == "" or "cpu" in fields[1].split(",")):
            continue
        hierarchy = root / fields[1] if fields[1] else root
        names = [name for name in fields[2].split("/") if name not in ("", ".")]
        if ".." in names:   # a cgroup outside this namespace's root: its folder is not in root
            continue
        folders += [hierarchy.joinpath(*names[:depth]) for depth in range(len(names), 0, -1)]
    return folders


def cgroup_cpu_limit(root, membership) -> float | None:
    """The CPUs' worth of time the cgroup CPU quotas of this process allow: the smallest quota
    (cpu_quota) of the folders of cpu_cgroup_folders(root, membership), or None where none is
    set or readable."""
    quotas = [cpu_quota(folder) for folder in cpu_cgroup_folders(root, membership)]
    return min((quota for quota in quotas if quota is not None), default=None)


def _cgroup_cpus():
    """cgroup_cpu_limit of this process, from CGROUP_ROOT and PROC_SELF_CGROUP."""
    return cgroup_cpu_limit(CGROUP_ROOT, PROC_SELF_CGROUP)


class ThreadCount:
    """Chooses the thread count of each parallel call from the load other processes put on the
    machine since the previous choice, and from the cgroup CPU quota (see the module docstring).

    `sample` and `cpu_limit` are what it reads: the busy time (_busy_seconds) and the quota in
    CPUs or None (_cgroup_cpus)."""

    def __init__(self, sample=_busy_seconds, cpu_limit=_cgroup_cpus):
        self._sample = sample
        self._cpu_limit = cpu_limit
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
        """Threads to use now: the idle cores of those this process may use, at most the cgroup
        CPU quota rounded up and `most` (Numba's maximum); at least 1."""
        most = most or numba.config.NUMBA_NUM_THREADS
        cores = len(allowed_cpus())
        others = self.others_busy_cores()
        busy_cores = int(others + (1 - IDLE_CORE_SHARE))  # rounds a share above 0.5 up to a core
        limit = self._cpu_limit()
        quota_cores = math.ceil(limit) if limit is not None else cores
        return max(1, min(most, cores - busy_cores, quota_cores))
