"""What the kernels written as vector code in LLVM IR (outer_tile.py's tile, softmax.py's row
maximum) share: the check of their array arguments, the pointer to an array's data, and
`carried_loop`, a counted loop whose values stay in registers.

The values a loop carries from one turn to the next (a tile's sums, running maxima) are phi
values: LLVM keeps them in registers, where a Python loop over an array of them would load
and store them at every turn.
"""

from llvmlite import ir
from numba import types


def is_float32_array(t, ndim):
    """Whether the Numba type t is a C-contiguous float32 array of ndim dimensions."""
    return isinstance(t, types.Array) and t.dtype == types.float32 and t.ndim == ndim \
        and t.layout == "C"


def data_pointer(context, builder, array_type, array):
    """The float pointer to an array's first element."""
    return context.make_array(array_type)(context, builder, array).data


def carried_loop(builder, name, start, stop, values, turn):
    """Emit `for k in range(start, stop)` (i64 values) carrying `values` (LLVM values) from one
    turn to the next: turn(k, carried) emits one turn's code and returns the next values, in
    the same order. Returns the values after the loop: `values` themselves when it runs no
    turn. The builder is left after the loop."""
    i64 = ir.IntType(64)
    entry = builder.block
    loop = builder.append_basic_block(f"{name}.loop")
    done = builder.append_basic_block(f"{name}.done")
    builder.cbranch(builder.icmp_signed("<", start, stop), loop, done)

    builder.position_at_end(loop)
    k = builder.phi(i64)
    k.add_incoming(start, entry)
    carried = [builder.phi(value.type) for value in values]
    for phi, value in zip(carried, values):
        phi.add_incoming(value, entry)
    after = turn(k, carried)
    latch = builder.block
    next_k = builder.add(k, ir.Constant(i64, 1))
    k.add_incoming(next_k, latch)
    for phi, value in zip(carried, after):
        phi.add_incoming(value, latch)
    builder.cbranch(builder.icmp_signed("<", next_k, stop), loop, done)

    builder.position_at_end(done)
    results = []
    for before, value in zip(values, after):
        result = builder.phi(before.type)
        result.add_incoming(before, entry)
        result.add_incoming(value, latch)
        results.append(result)
    return results
