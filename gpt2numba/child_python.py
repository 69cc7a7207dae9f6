"""The command line of a child Python that runs a piece of this package's code.

`python -c CODE` puts the current folder first on the child's sys.path: a `logging.py` or
`numba.py` in the folder where the user runs gpt2numba would run inside the child, and in a
clone of this repository its top-level kernels/ would shadow PyPI's `kernels`. The child imports
gpt2numba as the parent did, from where it is installed, so it needs no folder of the caller.
"""

import sys


def python_command(code, *args) -> list[str]:
    """argv of `python -c code args...` with the current folder left off sys.path: Python's -P
    from 3.11; on 3.10 the code removes sys.path[0] (the current folder) before anything else."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-c", code, *map(str, args)]
    return [sys.executable, "-c", "import sys; del sys.path[0]\n" + code, *map(str, args)]
