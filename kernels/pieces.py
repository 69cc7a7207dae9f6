"""Pieces handed out one at a time: how the products and the head share out their work.

Numba's parallel loop (`prange`) cuts its iterations into one equal run per thread, fixed
before any of them runs, so a parallel region lasts as long as its slowest thread's run. On a
shared machine one core is often slower than the other, a neighbour's work slowing it by 15%
or more, and then every product waited that long at its end: the threads' CPU time was 86% of
the region's on this project's VMs (docs/performance.md). So the kernels whose pieces are many
and alike take them from a shared counter instead: a thread takes the next piece when it has
finished one, and a slower core simply computes fewer.

    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(threads):
        piece = take_piece(counter)
        while piece < pieces:
            ...                                  # compute piece number `piece`
            piece = take_piece(counter)

Each iteration of the loop over threads runs on a thread of its own, or after another on the
same thread, which then finds no pieces left. A piece is computed the same way whichever
thread takes it, so the results do not depend on the order the threads took them in.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def take_piece(typingctx, counter):
    """counter [1] int64 -> its value, which it adds 1 to in one atomic step: the number of the
    next piece to compute, a different one for every call, whichever thread makes it."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64
            and counter.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        first = context.make_array(signature.args[0])(context, builder, args[0]).data
        # monotonic (relaxed) is enough: the counter orders nothing but itself, and the pieces'
        # results are seen by the calling thread once the parallel region has ended
        return builder.atomic_rmw("add", first, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen
