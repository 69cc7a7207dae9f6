"""The command line of a child Python that runs one of this package's modules.

`python -m MODULE` (like `python -c`) puts the current folder first on the child's sys.path: a
`logging.py` or `numba.py` in the folder where the user runs gpt2numba would run inside the
child, and in a clone of this repository its top-level kernels/ would shadow PyPI's `kernels`.
The child imports gpt2numba as the parent did, from where it is installed, so it needs no folder
of the caller.
"""

import sys


def python_command(module, *args) -> list[str]:
    """argv of `python -m module args...` with the current folder left off sys.path: Python's -P
    from 3.11; on 3.10, `python -c` with a line that removes sys.path[0] (the current folder)
    before anything else and then runs the module as __main__ (runpy, as -m does)."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", module, *map(str, args)]
    run = (f"import runpy, sys; del sys.path[0]; "
           f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", run, *map(str, args)]
