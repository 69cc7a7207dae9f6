"""Numba caches for tests that need a first run's compiles but not all of them: a copy of the
session's compiled cache (conftest's compiled_cache) less some kernels, so that a test still
sees those compiled, by the process it checks, without paying for a whole first compile; and
arrays typed as the model's parameters, so that kernel tests find the session's kernels."""

import shutil
from pathlib import Path

from gpt2numba.kernels import causal_self_attention, entropy, gelu, token_rank

# Two kernels of each half that the compiling processes share out (compiling.HALVES), one of the
# forward and one of scoring each; attention compiles for seconds, so that processes which
# compile at once (no lock between them) overlap.
SOME_KERNELS = (causal_self_attention, gelu, entropy, token_rank)


def copy_without(cache, folder, kernels=SOME_KERNELS):
    """Copy the Numba cache folder `cache` into `folder`, less the entries of `kernels` (their
    own index and data files: the helpers they call stay cached). Returns folder as a Path."""
    cache, folder = Path(cache), Path(folder)
    shutil.copytree(cache, folder, dirs_exist_ok=True)
    for kernel in kernels:
        index = Path(kernel._cache._cache_file._index_path).relative_to(cache)
        entries = list((folder / index.parent).glob(index.name.removesuffix(".nbi") + ".*"))
        assert entries, f"{kernel.__name__} is not in the cache {cache}"
        for path in entries:
            path.unlink()
    return folder


def parameter(a):
    """a, made read-only, as the model holds its parameters: a kernel called with it has the
    model's types, which the session's Numba cache already holds (a writable weight would
    compile a specialisation of the kernel for the tests alone)."""
    a.flags.writeable = False
    return a
