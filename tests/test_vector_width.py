"""On AVX-512 CPUs the kernels vectorise with 512-bit registers, also on the Intel CPUs whose
LLVM tuning prefers 256 bits (kernels/_jit.py, use_full_width_vectors), and a target chosen by
the user, or a code generator that exists already, is left as it is.

Each case is a fresh process, the first with an empty JIT cache so that the kernel really
compiles and its machine code can be read.
"""

import os
import subprocess
import sys

import pytest
from numba.core.codegen import get_host_cpu_features

pytestmark = pytest.mark.skipif("+avx512f" not in get_host_cpu_features(),
                                reason="the choice concerns AVX-512 CPUs only")

REGISTERS_USED = """
import numpy as np
from gpt2numba.kernels import residual

x = np.ones((3, 1000), dtype=np.float32)
residual(x, x)
machine_code = "".join(residual.inspect_asm().values())
print("zmm" in machine_code)   # the 512-bit registers (ymm: their 256-bit halves)
"""

FEATURES = """
from numba.core.registry import cpu_target
{before}
import gpt2numba.kernels

print(cpu_target.target_context.codegen().magic_tuple()[2])
"""


def run(code, tmp_path, **env):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), **env), timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_kernels_loops_use_512_bit_registers(tmp_path):
    assert run(REGISTERS_USED, tmp_path) == "True"


def test_features_the_user_sets_are_compiled_for_as_they_are(tmp_path):
    features = get_host_cpu_features()
    assert run(FEATURES.format(before=""), tmp_path, NUMBA_CPU_FEATURES=features) == features


def test_a_code_generator_made_before_the_kernels_import_is_left_as_it_is(tmp_path):
    made_before = FEATURES.format(before="cpu_target.target_context")
    assert run(made_before, tmp_path) == get_host_cpu_features()
    assert run(FEATURES.format(before=""), tmp_path).endswith(",-prefer-256-bit")
