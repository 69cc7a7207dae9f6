"""The one place that decides how kernels are compiled.

Every kernel is float32 in, float32 out, over C-contiguous arrays. The policy:
- `parallel=True` on the public kernels: their outer loop is a `prange`;
- `cache=True`: a second process loads the machine code from disk instead of compiling again;
- fastmath with an explicit flag set that leaves out `nnan` and `ninf`, so that -inf and NaN
  keep their IEEE meaning (the causal mask and max-subtracted softmax rely on it) while
  reductions may still be reassociated and vectorised;
- `error_model="numpy"`: division by zero gives inf instead of raising, so division does not
  carry a branch that blocks vectorisation.

Numba types Python float literals as float64, so kernels use the float32 constants of their
module (`np.float32(...)`) to keep arithmetic in float32.
"""

from numba import njit

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def kernel(function):
    """Compile a public kernel: parallel, cached, float32-safe fastmath."""
    return njit(parallel=True, cache=True, fastmath=FASTMATH, error_model="numpy")(function)


def helper(function):
    """Compile a serial building block that kernels call from inside their parallel loops."""
    return njit(cache=True, fastmath=FASTMATH, error_model="numpy")(function)


def ordered_helper(function):
    """Compile a helper whose float operations must run in the order written (no `reassoc`).

    For code such as exp32's `p * 2^(k-1) * 2`, where regrouping the factors as
    `p * (2^(k-1) * 2)` overflows to inf.
    """
    return njit(cache=True, fastmath=FASTMATH - {"reassoc"}, error_model="numpy")(function)
