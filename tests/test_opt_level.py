"""The kernels compile at LLVM -O1 (kernels/_jit.py), other Numba code in the process at its own
level, and a NUMBA_OPT set by the user rules both.

Each case is a fresh process with an empty JIT cache, so that the kernel really compiles. The
level each compile used is read where Numba builds LLVM's optimisation pipelines (the codegen's
_pass_builder, spied on, not replaced): the full pipelines take Numba's config.OPT of the
moment, the "cheap" pre-pass always asks for level 0 and is left out.
"""

import os
import subprocess
import sys

import pytest

COMPILE_BOTH = """
from numba import njit
from numba.core import codegen, config

levels = []
build_passes = codegen.JITCPUCodegen._pass_builder

def spy(self, **options):
    if "opt" not in options:
        levels.append(int(config.OPT))
    return build_passes(self, **options)

codegen.JITCPUCodegen._pass_builder = spy

import numpy as np
from gpt2numba.kernels import residual

x = np.ones((3, 5), dtype=np.float32)
residual(x, x)
ours, levels[:] = sorted(set(levels)), []

@njit
def users_function(a):
    return a.sum()

users_function(x)
print(ours, sorted(set(levels)), int(config.OPT))
"""


def levels_used(tmp_path, numba_opt=None):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("NUMBA_OPT", None)
    if numba_opt is not None:
        env["NUMBA_OPT"] = numba_opt
    done = subprocess.run([sys.executable, "-c", COMPILE_BOTH], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_kernels_compile_at_O1_and_other_numba_code_at_numbas_default(tmp_path):
    assert levels_used(tmp_path) == "[1] [3] 3"


@pytest.mark.parametrize("numba_opt", ["0", "2"])
def test_a_users_NUMBA_OPT_is_obeyed_by_the_kernels_too(tmp_path, numba_opt):
    level = int(numba_opt)
    assert levels_used(tmp_path, numba_opt) == f"[{level}] [{level}] {level}"
