"""softmax: p[j] = exp(x[j] - max(x)) / sum_k exp(x[k] - max(x)), row by row.

Subtracting the row's maximum first keeps every exponent <= 0, so nothing overflows whatever
the logits' magnitude; -inf entries (masked positions) get probability 0. The sum of the
exponentials is accumulated in float64: over GPT-2's 50257 logits a float32 sum drifts by
about 1e-5 relative. `softmax_inplace` is the serial form for one row; `exp_minus_max` is its
first half, for attention, which divides its outputs by the sum instead of the row.

The row's maximum is taken with LLVM's `maxnum`, not Python's `max`. `max(a, b)` is a compare
and a select, and LLVM turns a loop of those into SIMD code only when told that no value is
NaN, which the kernels do not assume (see _jit.py); `maxnum` is defined for NaN (it returns the
other operand), so the loop vectorises as it is (`python benchmarks/bench_kernels.py` times
the attention that uses it). A NaN in a row still gives NaN everywhere, through its own
exponential.
"""

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from ._jit import helper, kernel
from .exp import exp32


@intrinsic
def _maxnum(typingctx, a, b):
    """The larger of two float32 (LLVM's llvm.maxnum: if one is NaN, the other)."""
    if a != types.float32 or b != types.float32:
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        maxnum = builder.module.declare_intrinsic("llvm.maxnum", [f32],
                                                  ir.FunctionType(f32, [f32, f32]))
        return builder.call(maxnum, args)

    return types.float32(a, b), codegen


@helper
def row_max(row, length):
    """max(row[:length]) for a float32 row, length >= 1; NaN only if every entry is NaN."""
    top = row[0]
    for j in range(1, length):
        top = _maxnum(top, row[j])
    return top


@helper
def exp_minus_max(row, length):
    """Replace row[:length] (float32, contiguous) by exp(row - max(row)); return their sum
    (float64)."""
    top = row_max(row, length)
    total = 0.0
    for j in range(length):
        e = exp32(row[j] - top)
        row[j] = e
        total += e
    return total


@helper
def softmax_inplace(row, length):
    """Replace row[:length] (float32, contiguous) by its softmax."""
    inv_total = np.float32(1.0 / exp_minus_max(row, length))
    for j in range(length):
        row[j] *= inv_total


@kernel
def softmax(x):
    """x [n, m] float32 -> [n, m] float32, each row a probability distribution."""
    n, m = x.shape
    out = x.copy()
    for i in prange(n):
        softmax_inplace(out[i], m)
    return out
