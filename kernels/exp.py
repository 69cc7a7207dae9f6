"""exp(x) for float32, written so that LLVM can vectorise it.

Numba lowers `np.exp` to a call into libm, one element at a time, which no loop around it can
vectorise; softmax and GELU need over a hundred million of them in a forward of 1024 tokens
of gpt2. This version is arithmetic only, so a loop over it becomes SIMD code:

    exp(x) = 2^k * exp(r),   k = round(x / ln 2),   r = x - k ln 2,   |r| <= ln(2) / 2

exp(r) is its Taylor polynomial of degree 7 (truncation error below 1e-8 relative on that
interval), and 2^k is built directly as a float32 bit pattern: 2 * 2^(k-1), with 2^(k-1) as
(k - 1 + 127) << 23, so that k = 128 (x near the top of the float32 range) does not overflow.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import ordered_helper

LOG2E = np.float32(1.4426950408889634)
LN2_HI = np.float32(0.693145751953125)       # ln 2 split in two, so k * LN2_HI is exact
LN2_LO = np.float32(1.428606765330187e-06)
X_MAX = np.float32(88.72)                    # exp(88.7229) is the largest float32
X_MIN = np.float32(-86.5)                    # below, exp(x) < 2^-124: flushed to 0
HALF = np.float32(0.5)
ONE = np.float32(1.0)
TWO = np.float32(2.0)
C2 = np.float32(1 / 2)
C3 = np.float32(1 / 6)
C4 = np.float32(1 / 24)
C5 = np.float32(1 / 120)
C6 = np.float32(1 / 720)
C7 = np.float32(1 / 5040)
ZERO = np.float32(0.0)
INF = np.float32(np.inf)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret the low 32 bits of an integer as a float32 bit pattern (no conversion)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        low = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())

    return types.float32(bits), codegen


@ordered_helper
def exp32(x):
    """exp(x) for a float32 scalar x: within 2 ulp of exp, 0 below -86.5, inf above 88.72."""
    xc = min(max(x, X_MIN), X_MAX)
    k = np.floor(xc * LOG2E + HALF)
    r = xc - k * LN2_HI - k * LN2_LO
    p = ONE + r * (ONE + r * (C2 + r * (C3 + r * (C4 + r * (C5 + r * (C6 + r * C7))))))
    half_scale = _float32_from_bits((np.int32(k) + 126) << 23)
    y = p * half_scale * TWO
    if x < X_MIN:
        y = ZERO
    if x > X_MAX:
        y = INF
    return y
