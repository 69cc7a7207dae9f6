"""Threads as users have them (kernels/threads.py): a fork after a forward, several Python
threads at once, and a machine where another process keeps a core busy.

Each case that depends on the threading layer runs in a fresh process, where the layer is
chosen as in a user's program.
"""

import os
import subprocess
import sys
import threading
import time

import numba
import numpy as np
import pytest

from gpt2numba import ArgumentError
from gpt2numba.kernels import threads as kernel_threads
from gpt2numba.kernels.threads import ThreadCount, threads_now

IDS = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13]

# A forward in the parent, then the same forward in a fork child (multiprocessing's fork
# context, the default on Linux before Python 3.14); prints the layer and whether they agree.
FORK_AFTER_FORWARD = f"""
import multiprocessing, sys
import numba, numpy as np
from gpt2numba import GPT2
model = GPT2.from_pretrained(sys.argv[1])
parent = model.logits({IDS})

def child(connection):
    connection.send(model.logits({IDS}))

context = multiprocessing.get_context("fork")
receiver, sender = context.Pipe(duplex=False)
process = context.Process(target=child, args=(sender,))
process.start()
got = receiver.recv() if receiver.poll(120) else None
process.join(30)
print(numba.threading_layer(), process.exitcode, got is not None and np.array_equal(got, parent))
"""


def test_a_fork_child_after_a_forward_computes_the_parents_result(tiny_checkpoint):
    run = subprocess.run([sys.executable, "-c", FORK_AFTER_FORWARD, str(tiny_checkpoint)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["tbb", "0", "True"], run.stderr


def test_several_python_threads_at_once_get_the_serial_results(tiny_model):
    prompts = [IDS[:n] for n in (1, 3, 7, 10)] * 2
    expected = [tiny_model.logits(ids) for ids in prompts]
    results = [None] * len(prompts)

    def work(i):
        results[i] = tiny_model.logits(prompts[i])

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(prompts))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert all(np.array_equal(got, want) for got, want in zip(results, expected))


def allowed_cores():
    """How many CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


@pytest.fixture
def busy_process():
    """Another process that keeps one core busy for the test, stopped at its end."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield process
    finally:
        process.kill()
        process.wait()


def test_beside_a_busy_process_the_kernels_leave_its_core_alone(busy_process):
    cores = allowed_cores()
    count = ThreadCount().start()
    time.sleep(1.0)
    assert count.others_busy_cores() >= 0.6
    time.sleep(1.0)
    assert count(most=cores) <= max(1, cores - 1)


def test_only_other_processes_time_counts_and_a_small_share_leaves_a_core_idle():
    samples = iter([(100.0, 10.0, 0.0),     # busy CPU s of all processes, of this one, wall s
                    (103.0, 12.0, 1.0),     # 3 busy core-s in 1 s, 2 of them ours: others 1.0
                    (104.4, 13.0, 2.0),     # others 0.4 of a core: counted as idle
                    (105.0, 13.0, 3.0)])    # others 0.6: a core taken
    count = ThreadCount(sample=lambda: next(samples)).start()
    assert count.others_busy_cores() == pytest.approx(1.0)
    assert count(most=64) == allowed_cores()
    assert count(most=64) == max(1, allowed_cores() - 1)


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"cpu  1 2 3\n", b"cpu  a b c d e f g h\n",
                                     b"cpu  1 2 3 4 5 6 7\n", b"\xff\xfe\x00\n"])
def test_a_proc_stat_that_cannot_be_parsed_leaves_every_allowed_core(monkeypatch, tmp_path,
                                                                      content):
    stat = tmp_path / "stat"
    stat.write_bytes(content)
    monkeypatch.setattr(kernel_threads, "PROC_STAT", str(stat))
    count = ThreadCount()
    assert count.others_busy_cores() == 0.0
    assert count(most=64) == allowed_cores()


def test_the_cores_counted_are_those_this_process_may_run_on():
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mask)})   # this thread only, until the end of the test
    try:
        assert ThreadCount(sample=lambda: None)(most=64) == 1
    finally:
        os.sched_setaffinity(0, mask)


def proc_stat(busy_ticks):
    """/proc/stat's CPU lines: the total, then one per CPU number of `busy_ticks` (its user
    time; nothing else busy, 1000 idle ticks)."""
    lines = [f"cpu{number} {ticks} 0 0 1000 0 0 0 0 0 0" for number, ticks in busy_ticks.items()]
    total = f"cpu  {sum(busy_ticks.values())} 0 0 {1000 * len(busy_ticks)} 0 0 0 0 0 0"
    return "\n".join([total, *lines, "intr 1 2 3", "ctxt 4"]) + "\n"


def test_a_busy_cpu_this_process_may_not_use_leaves_its_cores_idle(monkeypatch, tmp_path):
    stat = tmp_path / "stat"
    mine = dict.fromkeys(os.sched_getaffinity(0), 0)
    other = max(mine) + 1   # a CPU outside this process's affinity mask
    stat.write_text(proc_stat({**mine, other: 0}))
    monkeypatch.setattr(kernel_threads, "PROC_STAT", str(stat))
    count = ThreadCount()
    count.others_busy_cores()
    stat.write_text(proc_stat({**mine, other: 100_000}))
    assert count.others_busy_cores() == 0.0


# A program whose /proc/stat is the file argv[2] ("/proc/stat" cannot be replaced for one
# process, so the kernels' PROC_STAT is pointed at it before gpt2numba's model is imported).
# It runs the command line's argv[3:] as `gpt2numba` would.
WITH_PROC_STAT = """
import runpy, sys
from gpt2numba.kernels import threads as kernel_threads
kernel_threads.PROC_STAT = sys.argv[2]
sys.argv = ["gpt2numba", *sys.argv[3:]]
runpy.run_module("gpt2numba", run_name="__main__")
"""


@pytest.mark.parametrize("content", ["", "garbage\n"])
def test_a_proc_stat_that_reads_as_empty_or_garbage_does_not_stop_a_run(tmp_path, home,
                                                                         tiny_checkpoint, content):
    from support.cli import cli_env

    stat = tmp_path / "stat"
    stat.write_text(content)
    done = subprocess.run([sys.executable, "-c", WITH_PROC_STAT, "", stat, "run", "--model",
                           tiny_checkpoint, "--prompt", "Hello", "-n", "3"],
                          env=cli_env(home), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and done.stdout.startswith("Hello")


# A process that records every file Python opens, then loads a model with an explicit thread
# count and runs a forward: prints the files opened under /proc/stat.
OPENS_WITH_THREADS = """
import sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from gpt2numba import GPT2
GPT2.from_pretrained(sys.argv[1], threads=1).next_token_logits([464, 3290])
print([path for path in opened if path.startswith("/proc/stat")])
"""


def test_an_explicit_thread_count_never_reads_proc_stat(tiny_checkpoint):
    done = subprocess.run([sys.executable, "-c", OPENS_WITH_THREADS, tiny_checkpoint],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"


@pytest.mark.parametrize("threads", [0, True, 1.5, 10_000])
def test_a_thread_count_outside_what_numba_has_is_refused(tiny_model, threads):
    with pytest.raises(ArgumentError, match="threads must be None or an integer"):
        tiny_model.threads = threads


def test_a_forward_leaves_the_callers_numba_threads_as_they_were(tiny_model):
    numba.set_num_threads(1)
    try:
        for setting in (None, 2, 1):
            tiny_model.threads = setting
            tiny_model.logits(IDS)
            assert numba.get_num_threads() == 1
    finally:
        tiny_model.threads = None
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_bench_says_when_other_processes_were_busy():
    from gpt2numba.bench import FreshStart, Report, format_report

    start = FreshStart(import_s=0.1, load_s=0.1, compile_s=0.1, first_forward_s=0.1,
                       peak_rss_mib=100.0, to_first_token_s=0.5)
    quiet = Report("m", 2, "tbb", {"numba": "", "numpy": "", "python": ""}, start, start,
                   load_average=0.1, others_busy_cores=0.1)
    busy = Report("m", 2, "tbb", {"numba": "", "numpy": "", "python": ""}, start, start,
                  load_average=1.9, others_busy_cores=1.2)
    assert "load average 0.10" in format_report(quiet) and "warning" not in format_report(quiet)
    assert format_report(busy).splitlines()[-1].startswith("warning: other processes kept 1.2")


# On one core, a model loaded and run from a thread that then ends: the process must exit.
FROM_A_THREAD_ON_ONE_CORE = """
import os, sys, threading
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from gpt2numba import GPT2
results = []
worker = threading.Thread(target=lambda: results.append(
    GPT2.from_pretrained(sys.argv[1]).next_token_logits([464, 3290])))
worker.start()
worker.join()
print(len(results), flush=True)
"""


def test_a_process_that_ran_the_model_in_a_thread_on_one_core_exits(tiny_checkpoint):
    """tbb waited forever at exit when its threads were first started by a thread that ended."""
    try:
        done = subprocess.run([sys.executable, "-c", FROM_A_THREAD_ON_ONE_CORE,
                               str(tiny_checkpoint)], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as stuck:  # subprocess.run has killed it
        pytest.fail(f"the process did not exit: {stuck.stdout!r}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1\n"


def cgroup_tree(root, files):
    """Write `files` ({path under root: content}) as a cgroup file system mounted at root."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


@pytest.mark.parametrize("files,membership,cpus", [
    ({"cpu.max": "400000 100000\n"}, "0::/\n", 4.0),                 # v2, a container's own
    ({"cpu.max": "max 100000\n"}, "0::/\n", None),                   # v2, no limit
    ({"cpu.max": "150000 100000\n"}, "", 1.5),                       # membership empty
    ({"system.slice/cpu.max": "200000 100000\n",                     # v2: a parent's limit holds
      "system.slice/my.service/cpu.max": "max 100000\n"}, "0::/system.slice/my.service\n", 2.0),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},   # v1, no limit
     "4:cpu,cpuacct:/\n", None),
    ({"cpu,cpuacct/docker/cpu.cfs_quota_us": "300000\n",              # v1, the smaller wins
      "cpu,cpuacct/docker/cpu.cfs_period_us": "100000\n",
      "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
      "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"},
     "2:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n", 0.5),
    ({"cpu.max": "800000 100000\n", "cpu/cpu.cfs_quota_us": "200000\n",   # both: the smaller
      "cpu/cpu.cfs_period_us": "100000\n"}, "0::/\n1:cpu:/\n", 2.0),
    ({"a/cpu.max": "100000 100000\n"}, "0::/../a\n", None),    # a cgroup outside the namespace
])
def test_the_cgroup_cpu_limit_is_the_smallest_quota_of_the_cgroup_and_its_parents(
        tmp_path, files, membership, cpus):
    root = cgroup_tree(tmp_path / "cgroup", files)
    (tmp_path / "membership").write_text(membership)
    assert kernel_threads.cgroup_cpu_limit(root, tmp_path / "membership") == cpus


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"max\n", b"-100000 100000\n",
                                     b"400000 0\n", b"0 100000\n", b"400000\n", b"1_000 100\n",
                                     b"400000 100000 7\n", b"\xff\xfe 100000\n",
                                     b"9" * 5000 + b" 1\n"])
def test_a_cpu_max_of_garbage_is_no_limit(tmp_path, content):
    (tmp_path / "cpu.max").write_bytes(content)
    assert kernel_threads.cgroup_cpu_limit(tmp_path, tmp_path / "missing") is None


@pytest.mark.parametrize("quota,period", [(b"", b"100000"), (b"garbage", b"100000"),
                                          (b"-1", b"100000"), (b"400000", b"-1"),
                                          (b"400000 100000", b"100000"), (b"\xff", b"100000"),
                                          (b"9" * 5000, b"100000"), (b"400000", b"")])
def test_a_cfs_quota_or_period_of_garbage_is_no_limit(tmp_path, quota, period):
    cgroup_tree(tmp_path, {"cpu/cpu.cfs_quota_us": quota, "cpu/cpu.cfs_period_us": period})
    assert kernel_threads.cgroup_cpu_limit(tmp_path, tmp_path / "missing") is None


def test_missing_cgroup_files_are_no_limit(tmp_path):
    assert kernel_threads.cgroup_cpu_limit(tmp_path / "absent", tmp_path / "absent") is None


@pytest.mark.parametrize("cpus,threads", [(None, 64), (64.0, 64), (4.0, 4), (1.5, 2), (1.0, 1),
                                          (0.2, 1)])
def test_the_thread_count_is_at_most_the_cgroup_quota_rounded_up(cpus, threads):
    count = ThreadCount(sample=lambda: None, cpu_limit=lambda: cpus)
    assert count(most=64) == min(threads, allowed_cores())


# A forward of a model given no thread count, with kernels/threads.py's /proc/stat an empty file
# (every allowed CPU counts as idle) and its cgroup root and membership argv[2] and argv[3]:
# prints the thread count the forward ran with.
THREADS_OF_A_FORWARD = """
import sys
import numba
from gpt2numba.kernels import threads as kernel_threads
kernel_threads.PROC_STAT = "/dev/null"
kernel_threads.CGROUP_ROOT, kernel_threads.PROC_SELF_CGROUP = sys.argv[2:4]
from gpt2numba import GPT2
model = GPT2.from_pretrained(sys.argv[1])
counts = []
set_num_threads = numba.set_num_threads
numba.set_num_threads = lambda n: counts.append(n) or set_num_threads(n)
model.next_token_logits([464, 3290])
print(counts[0])
"""


@pytest.mark.skipif(allowed_cores() < 2, reason="needs two cores to tell 1 thread from all")
@pytest.mark.parametrize("limit", ["none", "taskset", "cgroup"])
def test_a_model_given_no_thread_count_honours_taskset_and_a_cgroup_quota(tmp_path,
                                                                          tiny_checkpoint, limit):
    quota = {"cpu.max": "100000 100000\n"} if limit == "cgroup" else {}   # one CPU's time
    root = cgroup_tree(tmp_path / "cgroup", quota)
    (tmp_path / "membership").write_text("0::/\n")
    command = [sys.executable, "-P", "-c", THREADS_OF_A_FORWARD, str(tiny_checkpoint), str(root),
               str(tmp_path / "membership")]
    if limit == "taskset":
        command = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *command]
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("2\n" if limit == "none" else "1\n")


def test_threads_now_is_the_count_a_kernels_parallel_loops_run_on():
    count = numba.njit(lambda: threads_now())
    before = numba.get_num_threads()
    try:
        for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(threads)
            assert count() == threads
    finally:
        numba.set_num_threads(before)
