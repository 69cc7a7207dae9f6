"""Keeping the forward's freed arrays in the heap, so that the next layer reuses their pages.

Every kernel allocates its output, and a forward of n tokens frees and allocates again arrays
of n x 3072 floats per layer. glibc serves arrays above its mmap threshold with fresh pages
from the OS and gives freed heap memory back above its trim threshold; both thresholds grow
with the arrays a process frees, but only up to each array's size, and a layer frees several.
So a long forward took tens of thousands of page faults, pages the kernel zeroes anew, at
every layer. With the two thresholds set to 32 and 64 MiB, the values glibc's own adjustment
stops at, there are none (tests/test_heap.py counts them), for slightly more peak memory;
docs/performance.md has the timings.

The setting is the process's, as glibc's own adjustment is. A user's explicit one (the
MALLOC_*_THRESHOLD_ variables, or GLIBC_TUNABLES naming either threshold) is left as it is, and
on other C libraries this does nothing.
"""

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1   # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20

_done = False


def _user_has_set_thresholds():
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return ("MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ
            or "mmap_threshold" in tunables or "trim_threshold" in tunables)


def keep_freed_memory():
    """Set glibc's mmap and trim thresholds to 32 and 64 MiB, once per process (see the module
    docstring); nothing where the C library is not glibc or the user set them."""
    global _done
    if _done:
        return
    _done = True
    if platform.libc_ver()[0] != "glibc" or _user_has_set_thresholds():
        return
    mallopt = ctypes.CDLL(None).mallopt
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
