"""A first run compiles in two processes, one per half of HALVES, into the disk cache while this
process loads the model, and this one loads their kernels from the cache: the forward's before
the first forward, the others when gpt2numba.compile() asks for them all. Nothing depends on the
processes succeeding, and they do not outlive this process. Each case runs in a fresh process
with a NUMBA_CACHE_DIR of its own: empty for the first run as a user meets it, and for the
others the session's compiled cache less support.numba_cache.SOME_KERNELS (two of each half),
which the processes, or this one, then compile: the same paths, without paying for a whole
first compile, the suite's dearest step, in every case."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from support.cli import users_env
from support.numba_cache import SOME_KERNELS, copy_without

SOME = sorted(kernel.__name__ for kernel in SOME_KERNELS)

# What this process compiled itself (Numba's compile events of the public kernels), whether the
# forward's kernels are cached after the first forward and every kernel after compile(), and the
# logits: the model's first forward after a cold load.
FIRST_RUN = textwrap.dedent("""
    import json, os, sys
    from numba.core import event
    from gpt2numba import GPT2, compiling
    from gpt2numba.blocks import FORWARD_KERNELS
    from gpt2numba.compiling import KERNELS
    from gpt2numba.kernels.cache import all_cached

    if sys.argv[2] == "one-core":
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    names = {kernel.__name__ for kernel in KERNELS}
    compiled = set()
    class Listener(event.Listener):
        def on_start(self, ev):
            name = ev.data["dispatcher"].py_func.__name__
            if name in names:
                compiled.add(name)
        def on_end(self, ev):
            pass
    event.register("numba:compile", Listener())
    compiling.start_compiling()
    compilers = set(compiling._compilers.values())
    if sys.argv[2] == "kill-compilers":  # before they have compiled anything (imports take longer)
        for compiler in compilers:
            compiler._process.kill()
    model = GPT2.from_pretrained(sys.argv[1])
    logits = model.next_token_logits([464, 3290, 318])
    forward_cached = all_cached(FORWARD_KERNELS)
    waited_for_at_exit = [c.wait_at_exit for c in compilers if c in compiling._compilers.values()]
    if sys.argv[2] != "exit-after-first-token":
        compiling.compile()
    print(json.dumps({"compilers": len(compilers), "compiled": sorted(compiled),
                      "waited_for_at_exit": waited_for_at_exit,
                      "cached": forward_cached and all_cached(KERNELS),
                      "logits": logits[:5].tolist()}))
""")

EXIT_EARLY = textwrap.dedent("""
    from gpt2numba import compiling
    compiling.start_compiling()
    print(*{compiler._process.pid for compiler in compiling._compilers.values()}, flush=True)
""")


CACHED = ("from gpt2numba.compiling import KERNELS\n"
          "from gpt2numba.kernels.cache import all_cached\n"
          "print(all_cached(KERNELS))\n")


def first_run(checkpoint, how, cwd=None, cache_from=None):
    """FIRST_RUN in a fresh process (-P: only its children may see `cwd`) with an empty cache,
    or a copy of the compiled cache `cache_from` less SOME_KERNELS."""
    with tempfile.TemporaryDirectory(prefix="gpt2numba-test-second-") as cache:
        if cache_from is not None:
            copy_without(cache_from, cache)
        env = users_env(NUMBA_CACHE_DIR=cache)
        done = subprocess.run([sys.executable, "-P", "-c", FIRST_RUN, str(checkpoint), how],
                              env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        after = subprocess.run([sys.executable, "-c", CACHED], env=env, capture_output=True,
                               text=True, timeout=120)
    assert after.returncode == 0, after.stderr
    return dict(json.loads(done.stdout), cached_after_exit=after.stdout.strip() == "True")


@pytest.fixture(scope="module")
def expected_logits(tiny_model):
    return tiny_model.next_token_logits([464, 3290, 318])[:5].tolist()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_two_processes_compile_every_kernel_and_this_one_none(tiny_checkpoint, tmp_path,
                                                              expected_logits):
    """Started in a folder of the user's that holds modules named as the standard library's and
    Numba's: the compiling processes run none of them. (`python -c` would put the folder first
    on the children's sys.path: both would run these, fail to import Numba, and leave every
    kernel to this process.) One run for both, as a first compile is the suite's dearest step."""
    for name in ("logging", "numba"):
        (tmp_path / f"{name}.py").write_text(
            f"import pathlib\n"
            f"with open(pathlib.Path(__file__).with_name('imported'), 'a') as f:\n"
            f"    f.write('{name}\\n')\n")
    run = first_run(tiny_checkpoint, "as-is", cwd=tmp_path)
    assert not (tmp_path / "imported").exists(), (tmp_path / "imported").read_text()
    assert run["compilers"] == 2 and run["cached"]
    assert run["compiled"] == []
    assert run["logits"] == expected_logits


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_a_run_that_ends_at_its_first_token_leaves_every_kernel_cached(tiny_checkpoint,
                                                                        expected_logits,
                                                                        compiled_cache):
    # The first token waits for the forward's kernels only; the exit lets the processes finish
    # scoring's (entropy and token_rank of SOME_KERNELS), else every later run would start them
    # again. (Whether any is still compiling at the first token is a race: so the flag that
    # makes the exit wait, too.)
    run = first_run(tiny_checkpoint, "exit-after-first-token", cache_from=compiled_cache)
    assert run["compilers"] == 2 and run["compiled"] == []
    assert all(run["waited_for_at_exit"])
    assert run["cached_after_exit"]
    assert run["logits"] == expected_logits


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_compiling_processes_that_die_leave_their_kernels_to_this_one(tiny_checkpoint,
                                                                       expected_logits,
                                                                       compiled_cache):
    run = first_run(tiny_checkpoint, "kill-compilers", cache_from=compiled_cache)
    assert run["compilers"] == 2 and run["cached"]
    assert run["compiled"] == SOME
    assert run["logits"] == expected_logits


def test_on_one_core_this_process_compiles_what_is_missing(tiny_checkpoint, expected_logits,
                                                           compiled_cache):
    run = first_run(tiny_checkpoint, "one-core", cache_from=compiled_cache)
    assert run["compilers"] == 0 and run["cached"]
    assert run["compiled"] == SOME
    assert run["logits"] == expected_logits


def is_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def wait_until_ended(pids, seconds):
    """The pids still running after `seconds` (then killed, so that no test leaves them)."""
    deadline = time.monotonic() + seconds
    while any(map(is_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.02)
    running = [pid for pid in pids if is_running(pid)]
    for pid in running:
        os.kill(pid, signal.SIGKILL)
    return running


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_the_compiling_processes_end_with_this_one():
    with tempfile.TemporaryDirectory(prefix="gpt2numba-test-second-") as cache:
        done = subprocess.run([sys.executable, "-c", EXIT_EARLY],
                              env=users_env(NUMBA_CACHE_DIR=cache), capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        pids = [int(pid) for pid in done.stdout.split()]
        assert len(pids) == 2
        assert wait_until_ended(pids, 5) == []


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize("after", [0.0, 2.0])   # while the children import, while they compile
def test_the_compiling_processes_end_within_a_second_of_a_killed_parent(how, after):
    with tempfile.TemporaryDirectory(prefix="gpt2numba-test-second-") as cache:
        parent = subprocess.Popen([sys.executable, "-c", EXIT_EARLY + "import time\n"
                                   "time.sleep(60)\n"], env=users_env(NUMBA_CACHE_DIR=cache),
                                  stdout=subprocess.PIPE, text=True)
        try:
            pids = [int(pid) for pid in parent.stdout.readline().split()]
            time.sleep(after)
        finally:
            parent.send_signal(how)
            parent.communicate(timeout=60)
        assert len(pids) == 2
        assert wait_until_ended(pids, 1.0) == []
