"""softmax: p[j] = exp(x[j] - max(x)) / sum_k exp(x[k] - max(x)), row by row.

Subtracting the row's maximum first keeps every exponent <= 0, so nothing overflows whatever
the logits' magnitude; -inf entries (masked positions) get probability 0. The sum of the
exponentials is accumulated in float64: over GPT-2's 50257 logits a float32 sum drifts by
about 1e-5 relative. `softmax_inplace` is the serial form for one row; `exp_minus_max` is its
first half, for attention, which divides its outputs by the sum instead of the row.

The row's maximum is taken with LLVM's `maxnum`, not Python's `max`. `max(a, b)` is a compare
and a select, and LLVM turns a loop of those into SIMD code only when told that no value is
NaN, which the kernels do not assume (see _jit.py); `maxnum` is defined for NaN (it returns the
other operand). A NaN in a row still gives NaN everywhere, through its own exponential.
`row_max` is written as vector code (`_max_of_vectors`), not left to LLVM's vectoriser, which
takes such a loop in runs of 64 floats and the rest one float at a time: on the rows of 96
logits of scoring's head (head_log_softmax.py), a third of each row went one float at a time.
"""

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import helper, kernel
from .exp import exp32
from .vector_ir import carried_loop, data_pointer, is_float32_array

LANES = 16          # floats in row_max's vectors: one AVX-512 register, two AVX2 ones
ACCUMULATORS = 4    # row_max's running maxima (see _max_of_vectors)


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


@intrinsic
def _max_of_vectors(typingctx, row, vectors):
    """max(row[:vectors * LANES]) of a contiguous float32 row, vectors >= 1, by LLVM's maxnum on
    vectors of LANES floats: ACCUMULATORS running maxima taken in turn, so that each vector's
    maximum need not wait for the one before it, reduced to one float at the end."""
    if not (is_float32_array(row, 1) and isinstance(vectors, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        i64, f32 = ir.IntType(64), ir.FloatType()
        vector = ir.VectorType(f32, LANES)
        maxnum = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector, [vector, vector]), f"llvm.maxnum.v{LANES}f32")
        data = builder.bitcast(data_pointer(context, builder, signature.args[0], args[0]),
                               vector.as_pointer())
        count = context.cast(builder, args[1], signature.args[1], types.int64)
        first = builder.load(data, align=4)

        def turn(k, maxima):   # the next vector goes to the next running max
            vector_k = builder.load(builder.gep(data, [k]), align=4)
            return maxima[1:] + [builder.call(maxnum, [maxima[0], vector_k])]

        finals = carried_loop(builder, "row_max", ir.Constant(i64, 1), count,
                              [first] * ACCUMULATORS, turn)
        while len(finals) > 1:
            finals = [builder.call(maxnum, finals[j:j + 2]) for j in range(0, len(finals), 2)]
        reduce_max = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(f32, [vector]), f"llvm.vector.reduce.fmax.v{LANES}f32")
        return builder.call(reduce_max, finals)

    return types.float32(row, vectors), codegen


@helper
def row_max(row, length):
    """max(row[:length]) for a float32 row (1-D, contiguous), length >= 1; NaN only if every
    entry is NaN. Whole vectors of LANES floats first (_max_of_vectors), then the rest, fewer
    than LANES, one by one."""
    whole = length // LANES
    top = _max_of_vectors(row, whole) if whole else row[0]
    for j in range(whole * LANES, length):
        top = _maxnum(top, row[j])
    return top


@helper
def exp_minus(row, length, top):
    """Replace row[:length] (float32, contiguous) by exp(row - top); return their sum
    (float64).

    Two loops, the exponentials and then their sum: in one loop, the float64 sum would make
    LLVM compute the exponentials 8 floats at a time instead of 16."""
    for j in range(length):
        row[j] = exp32(row[j] - top)
    total = 0.0
    for j in range(length):
        total += row[j]
    return total


@helper
def exp_minus_max(row, length):
    """Replace row[:length] (float32, contiguous) by exp(row - max(row)); return their sum
    (float64)."""
    return exp_minus(row, length, row_max(row, length))


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
