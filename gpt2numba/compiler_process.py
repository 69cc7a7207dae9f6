"""A child process that compiles some kernels into Numba's disk cache while this one works.

Numba compiles on one core, and a machine's first run spends most of its wait compiling. With
two cores, two children (compiling.py says which kernels each) compile into the shared disk
cache while this process downloads and loads the model; this process then loads their kernels
from the cache. A child (compile_child.py) reports each kernel on its stdout, by name, once it
is cached, and relays the package's log records on the same pipe.

Nothing depends on the child succeeding: if it cannot start, dies, or writes nothing, the
kernels it did not report are compiled here as usual. It is stopped when this process exits;
once this process has had the kernels it waited for (`wait_at_exit`), the exit first lets the
child finish the rest (at most FINISH_SECONDS), so that the next runs find them all cached.
When this process is killed instead, the child ends with it: on Linux it asks the kernel for a
SIGTERM when its parent ends (PR_SET_PDEATHSIG, which follows the thread that started it: a
child started from a thread that ends early ends too, and its kernels are compiled here).
Numba writes each cache file whole under a temporary name, so a child cut short leaves no
damaged entry.
"""

import atexit
import logging
import os
import subprocess

from gpt2numba.child_python import python_command
from gpt2numba.kernels.cache import say_once

FINISH_SECONDS = 20  # a child's compile of its remaining kernels takes a few seconds


class CompilerProcess:
    """The running child compiling `names` (kernel names); `wait(name)` until it has one."""

    def __init__(self, names):
        self._process = subprocess.Popen(
            python_command("gpt2numba.compile_child", os.getpid(), *names),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.names = tuple(names)
        self._done = set()
        self.wait_at_exit = False
        atexit.register(self.finish)

    def wait(self, name):
        """Block until the child reports kernel `name` cached, or ends without it (the caller
        then compiles it: calling the kernel's compile is right in both cases)."""
        while name not in self._done:
            line = "" if self._process.stdout.closed else self._process.stdout.readline()
            if not line:  # the child has ended
                self.stop()
                return
            self._take(line)

    def finish(self):
        """At exit: when wait_at_exit, let the child end its compile (at most FINISH_SECONDS;
        Ctrl-C cuts the wait); then stop it."""
        if self.wait_at_exit:
            try:
                self._process.wait(FINISH_SECONDS)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                pass
        self.stop()

    def stop(self):
        """Stop the child if it still runs, say what it logged, and reap it."""
        if self._process.poll() is None:
            self._process.kill()
        if not self._process.stdout.closed:
            for line in self._process.stdout:
                self._take(line)
            self._process.stdout.close()
        self._process.wait()
        atexit.unregister(self.finish)

    def _take(self, line):
        kind, _, rest = line.rstrip("\n").partition(" ")
        if kind == "cached":
            self._done.add(rest)
        elif kind == "log":  # said once, though both children and this process may say it
            logger, _, message = rest.partition(" ")
            say_once(message, logger=logging.getLogger(logger))


def start(names) -> CompilerProcess | None:
    """A CompilerProcess for `names` when this process may use a second core, else None."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2:
        return None
    try:
        return CompilerProcess(names)
    except OSError:  # no process can be started (limits, a sandbox): compile here
        return None
