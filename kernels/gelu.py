"""gelu: GPT-2's activation, the tanh approximation of x * Phi(x):

    gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))

Computed through the identity 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)), with the vectorisable
exp32: Numba's np.tanh is a libm call per element, which does not vectorise, and the MLP of
gpt2 at 1024 tokens applies it to 38 million values per forward.
"""

import numpy as np
from numba import prange

from ._jit import kernel
from .exp import exp32

ONE = np.float32(1.0)
MINUS_TWO_SQRT_2_OVER_PI = np.float32(-2.0 * np.sqrt(2.0 / np.pi))
CUBIC = np.float32(0.044715)


@kernel
def gelu(x):
    """x [n, d] float32 -> [n, d] float32, gelu applied to every element."""
    n, d = x.shape
    out = np.empty((n, d), dtype=np.float32)
    for i in prange(n):
        row = x[i]
        for k in range(d):
            v = row[k]
            out[i, k] = v / (ONE + exp32(MINUS_TWO_SQRT_2_OVER_PI * (v + CUBIC * v * v * v)))
    return out
