"""The outer-product tile: the matrix product's innermost loop, written as vector code.

matmul.py's tiles compute dot products: each of their 24 sums is a vector of partial sums that
must be added across at the end of the tile (a horizontal sum), and they read the weights along
their rows. That end cost is paid per tile, so on GPT-2's depths of 768 to 3072 the tile runs
well below the machine's peak. BLAS computes the same product the other way round, as a sum of
outer products: with the weights packed so that step p holds columns j..j+COLUMNS of w[:, p]
side by side,

    acc[r, :] += x[i + r, p] * packed[p, :]     for r < ROWS, for every p,

each step is one broadcast of x per row and COLUMNS / WIDTH vector loads of weights, and every
multiply-add lands in its own vector of sums: nothing to add across at the end.

Numba has no vector type, and LLVM does not turn a 2-D tile of scalar sums written in Python
into vector registers (tried at 4 x 16 to 8 x 48: 6 to 22 GFLOP/s). So the loop is written in
LLVM IR, as a Numba intrinsic, in the machine's shape (from the CPU features Numba compiles
for, as matmul.py's tiles):
- AVX-512 (32 registers of 16 floats): 8 x 48, 24 registers of sums, 3 loads and 8 broadcasts
  for 24 multiply-adds a step, the shape of oneDNN's and OpenBLAS's AVX-512 kernels;
- AVX2 (16 registers of 8 floats): 2 x 48, 12 registers of sums, the weights read by the
  multiply-adds themselves.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import helper
from .matmul import AVX512

COLUMNS = 48  # the weights' packed groups (pack.py): a tile's columns
# outer_panel's schedule: blocks of at most BLOCK_ROWS rows, whose rows stay in L2 while the
# panel's groups pass over them, each in DEPTH_STEP steps of p at a time over all its tiles (a
# group's DEPTH_STEP x COLUMNS floats, 24 KiB, stay in L1 meanwhile).
BLOCK_ROWS = 256
DEPTH_STEP = 128
ZERO = np.float32(0.0)


def _is_float32_matrix(t):
    return isinstance(t, types.Array) and t.dtype == types.float32 and t.ndim == 2 \
        and t.layout == "C"


def tile_of(rows, width):
    """The intrinsic outer_tile(x, i, last, p0, packed, depth, acc, a0) of `rows` rows, in
    vectors of `width` floats:

    acc[a0 + r, :] += sum of x[min(i + r, last), p0 + p] * packed[p0 + p, :] for p < depth,
    for r < rows: one tile of rows x COLUMNS sums.

    x [n, >= p0 + depth] float32 (rows past `last` are read as row `last`, so a block's last
    tile needs no rows beyond it); packed [>= p0 + depth, COLUMNS] float32, one group of packed
    weights; acc [>= a0 + rows, COLUMNS] float32, the sums, read and written. All three
    C-contiguous; i, last, p0, depth, a0 integers.
    """
    vectors = COLUMNS // width

    @intrinsic
    def outer_tile(typingctx, x, i, last, p0, packed, depth, acc, a0):
        if not (_is_float32_matrix(x) and _is_float32_matrix(packed)
                and _is_float32_matrix(acc)
                and all(isinstance(t, types.Integer) for t in (i, last, p0, depth, a0))):
            return None
        return (types.void(x, i, last, p0, packed, depth, acc, a0),
                lambda *code_args: _tile_code(rows, width, vectors, *code_args))

    return outer_tile


def _tile_code(rows, width, vectors, context, builder, signature, args):
    """The tile's LLVM IR: a loop over p whose rows x vectors sums are phi values, so that they
    stay in registers, with llvm.fma on vectors of `width` floats."""
    i64 = ir.IntType(64)
    vector = ir.VectorType(ir.FloatType(), width)
    i, last, p0, depth, a0 = (context.cast(builder, args[k], signature.args[k], types.int64)
                              for k in (1, 2, 3, 5, 7))
    x_rows = _row_pointers(context, builder, signature.args[0], args[0], i, last, p0, rows)
    packed = builder.gep(_data(context, builder, signature.args[4], args[4]),
                         [builder.mul(p0, ir.Constant(i64, COLUMNS))])
    acc = builder.gep(_data(context, builder, signature.args[6], args[6]),
                      [builder.mul(a0, ir.Constant(i64, COLUMNS))])
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vector, [vector] * 3), f"llvm.fma.v{width}f32")
    vector_ptrs = [builder.bitcast(builder.gep(acc, [ir.Constant(i64, k * width)]),
                                   vector.as_pointer()) for k in range(rows * vectors)]
    sums_before = [builder.load(ptr, align=4) for ptr in vector_ptrs]

    entry = builder.block
    loop = builder.append_basic_block("outer_tile.loop")
    done = builder.append_basic_block("outer_tile.done")
    builder.cbranch(builder.icmp_signed(">", depth, ir.Constant(i64, 0)), loop, done)

    builder.position_at_end(loop)
    p = builder.phi(i64)
    p.add_incoming(ir.Constant(i64, 0), entry)
    sums = [builder.phi(vector) for _ in sums_before]
    for s, before in zip(sums, sums_before):
        s.add_incoming(before, entry)
    step = builder.gep(packed, [builder.mul(p, ir.Constant(i64, COLUMNS))])
    weights = [builder.load(builder.bitcast(builder.gep(step, [ir.Constant(i64, c * width)]),
                                            vector.as_pointer()), align=4)
               for c in range(vectors)]
    sums_after = []
    for r in range(rows):
        broadcast = _broadcast(builder, builder.load(builder.gep(x_rows[r], [p]), align=4),
                               vector)
        for c in range(vectors):
            sums_after.append(builder.call(fma, [broadcast, weights[c], sums[r * vectors + c]]))
    next_p = builder.add(p, ir.Constant(i64, 1))
    p.add_incoming(next_p, loop)
    for s, after in zip(sums, sums_after):
        s.add_incoming(after, loop)
    builder.cbranch(builder.icmp_signed("<", next_p, depth), loop, done)

    builder.position_at_end(done)
    results = [builder.phi(vector) for _ in sums_before]
    for result, before, after in zip(results, sums_before, sums_after):
        result.add_incoming(before, entry)
        result.add_incoming(after, loop)
    for result, ptr in zip(results, vector_ptrs):
        builder.store(result, ptr, align=4)
    return context.get_dummy_value()


def _data(context, builder, array_type, array):
    """The float pointer to an array's first element."""
    return context.make_array(array_type)(context, builder, array).data


def _row_pointers(context, builder, x_type, x_value, i, last, p0, rows):
    """Pointers to x[min(i + r, last), p0] for r < rows."""
    x = context.make_array(x_type)(context, builder, x_value)
    x_bytes = builder.bitcast(x.data, ir.IntType(8).as_pointer())
    row_bytes = builder.extract_value(x.strides, 0)
    pointers = []
    for r in range(rows):
        row = builder.add(i, ir.Constant(ir.IntType(64), r))
        row = builder.select(builder.icmp_signed(">", row, last), last, row)
        start = builder.bitcast(builder.gep(x_bytes, [builder.mul(row, row_bytes)]),
                                ir.FloatType().as_pointer())
        pointers.append(builder.gep(start, [p0]))
    return pointers


def _broadcast(builder, value, vector):
    """`value` in every lane of a `vector`."""
    lane = ir.IntType(32)
    undefined = ir.Constant(vector, ir.Undefined)
    first = builder.insert_element(undefined, value, ir.Constant(lane, 0))
    every_lane_from_0 = ir.Constant(ir.VectorType(lane, vector.count), [0] * vector.count)
    return builder.shuffle_vector(first, undefined, every_lane_from_0)


ROWS, WIDTH = (8, 16) if AVX512 else (2, 8)
outer_tile = tile_of(ROWS, WIDTH)


@helper
def tile_rows(rows):
    """rows rounded up to a multiple of the tile's ROWS: the sums' buffer of so many rows."""
    return (rows + ROWS - 1) // ROWS * ROWS


@helper
def outer_panel(x, packed, acc, out, b, i0, i1, j0, j1):
    """out[i0:i1, j0:j1] = x[i0:i1] @ W[:, j0:j1] + b[j0:j1] (no bias when b is empty), W's
    columns j0.. packed in groups: packed [>= ceil((j1 - j0) / COLUMNS), depth, COLUMNS].

    x [n, depth], out [n, m] float32, C-contiguous; acc [>= groups, >= tile_rows(min(i1 - i0,
    BLOCK_ROWS)), COLUMNS] float32, the sums' buffer (its contents are overwritten).
    """
    depth = x.shape[1]
    groups = (j1 - j0 + COLUMNS - 1) // COLUMNS
    for r0 in range(i0, i1, BLOCK_ROWS):
        r1 = min(r0 + BLOCK_ROWS, i1)
        acc[:groups] = ZERO
        for p0 in range(0, depth, DEPTH_STEP):
            steps = min(DEPTH_STEP, depth - p0)
            for g in range(groups):
                for i in range(r0, r1, ROWS):
                    outer_tile(x, i, r1 - 1, p0, packed[g], steps, acc[g], i - r0)
        for g in range(groups):
            c0 = j0 + g * COLUMNS
            for i in range(r0, r1):
                for c in range(min(COLUMNS, j1 - c0)):
                    out[i, c0 + c] = acc[g, i - r0, c] + (b[c0 + c] if b.shape[0] else ZERO)
