"""A second process that compiles some kernels into Numba's disk cache while this one works.

Numba compiles on one core, and a machine's first run spends most of its wait compiling. With
two cores, a child process compiles the heaviest kernels into the shared disk cache while this
process downloads, loads and compiles the others; this process then loads the child's kernels
from the cache. The child reports each kernel on its stdout, by name, once it is cached.

Nothing depends on the child succeeding: if it cannot start, dies, or writes nothing, the
kernels it did not report are compiled here as usual. It is stopped when this process exits.
"""

import atexit
import os
import subprocess
import sys

# The child: compile the named kernels of gpt2numba.compiling.SIGNATURES, in the order given,
# reporting each one once it is in the cache.
_CHILD = """
import sys
from gpt2numba.compiling import SIGNATURES
for kernel, signature in SIGNATURES:
    if kernel.__name__ in sys.argv[1:]:
        kernel.compile(signature)
        print(kernel.__name__, flush=True)
"""


class CompilerProcess:
    """The running child compiling `names` (kernel names); `wait(name)` until it has one."""

    def __init__(self, names):
        # The parent's sys.path, so that the child imports this very gpt2numba.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p or os.getcwd() for p in sys.path))
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *names], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.names = tuple(names)
        self._done = set()
        atexit.register(self.stop)

    def wait(self, name) -> bool:
        """Block until the child reports kernel `name` cached (True), or ends without it
        (False: the caller compiles it)."""
        while name not in self._done:
            line = "" if self._process.stdout.closed else self._process.stdout.readline()
            if not line:  # the child has ended
                self.stop()
                return False
            self._done.add(line.strip())
        return True

    def stop(self):
        """Stop the child if it still runs, and reap it."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process.stdout.close()  # closing twice is harmless
        atexit.unregister(self.stop)


def start(names) -> CompilerProcess | None:
    """A CompilerProcess for `names` when this process may use a second core, else None."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2:
        return None
    try:
        return CompilerProcess(names)
    except OSError:  # no process can be started (limits, a sandbox): compile here
        return None
