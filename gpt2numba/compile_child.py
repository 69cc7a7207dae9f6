"""The child that compiling.py starts on a first run (compiler_process.py): it compiles some
kernels into Numba's disk cache and reports each one, by name, once it is cached.

    python -P -m gpt2numba.compile_child PARENT_PID KERNEL_NAME...

It ends with its parent: on Linux it asks the kernel for a SIGTERM when the parent ends
(PR_SET_PDEATHSIG), and, should the parent have ended already, it exits. Both happen before
gpt2numba.compiling (Numba, the kernels) is imported, which takes a while. Then it compiles the
named kernels of gpt2numba.compiling.SIGNATURES, in the order given. Its stdout, one line each:

    cached NAME              kernel NAME is in the cache
    log LOGGER MESSAGE       a log record of the package (a damaged cache entry, say), relayed

Its stderr is discarded by the parent: any failure of its own shows up again there, where the
kernels it did not report are compiled.
"""

import ctypes
import logging
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


class Relay(logging.Handler):
    """Prints each record as a `log LOGGER MESSAGE` line (the message on one line)."""

    def emit(self, record):
        """Print the record for the parent, which says it (once) in its own log."""
        print("log", record.name, record.getMessage().replace("\n", " "), flush=True)


def main(parent_pid, names):
    """End with process parent_pid, then compile the kernels called `names`, reporting each."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:   # the parent ended before that
        return
    from gpt2numba.compiling import SIGNATURES

    logging.getLogger("gpt2numba").addHandler(Relay())
    for kernel, signature in SIGNATURES:
        if kernel.__name__ in names:
            kernel.compile(signature)
            print("cached", kernel.__name__, flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
