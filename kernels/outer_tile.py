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
The loop runs TURN_STEPS steps a turn, half a cache line of each of the tile's rows of x.
Written one step a turn, each step also paid the loop's counter and the arithmetic of a
prefetch address, a third of its instructions beside the multiply-adds; 16 steps a turn ran
no faster than 8 and took longer to compile.
Two things keep the loop fed. Each turn first asks for the line it reads in the next tile's
rows of x, into L2 (`_prefetch_next_rows`; each line is asked for by two turns). And a tile's
last steps store its sums, with the bias added, straight into the output rows
(`outer_tile_into`), instead of into the sums' buffer for a copy loop to write out afterwards:
the stores then go out while the next tile computes.
`python benchmarks/bench_kernels.py` times the product beside OpenBLAS.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import helper
from .matmul import AVX512
from .vector_ir import carried_loop, data_pointer, is_float32_array

COLUMNS = 48  # the weights' packed groups (pack.py): a tile's columns
# outer_panel's schedule: blocks of at most BLOCK_ROWS rows, whose rows stay in L2 while the
# panel's groups pass over them, each in DEPTH_STEP steps of p at a time over all its tiles.
# Meanwhile the block's rows (BLOCK_ROWS x DEPTH_STEP floats, 768 KiB) and the group's weights
# (DEPTH_STEP x COLUMNS floats, 144 KiB) stay in L2. Each step of DEPTH_STEP loads and stores
# every tile's sums once, so GPT-2's 768 inputs go in one step (steps of 128, whose 24 KiB of
# weights stayed in L1, measured slower: docs/performance.md).
BLOCK_ROWS = 256
DEPTH_STEP = 768
LINE_FLOATS = 16   # a cache line: what a prefetch asks for
TURN_STEPS = 8     # steps of p in one turn of the tile's loop
ZERO = np.float32(0.0)


def tile_of(rows, width, into_out=False):
    """The intrinsic outer_tile(x, i, last, p0, packed, depth, acc, a0) of `rows` rows, in
    vectors of `width` floats:

    acc[a0 + r, :] += sum of x[min(i + r, last), p0 + p] * packed[p0 + p, :] for p < depth,
    for r < rows: one tile of rows x COLUMNS sums.

    x [n, >= p0 + depth] float32 (rows past `last` are read as row `last`, so a block's last
    tile needs no rows beyond it); packed [>= p0 + depth, COLUMNS] float32, one group of packed
    weights; acc [>= a0 + rows, COLUMNS] float32, the sums, read and written. All three
    C-contiguous; i, last, p0, depth, a0 integers.

    With into_out, the intrinsic outer_tile_into(x, i, last, p0, packed, depth, acc, a0, out,
    c0, bias), a product's last steps: the same sums, added to acc's and to bias [>= COLUMNS]
    float32, stored to out[min(i + r, last), c0:c0 + COLUMNS] (out [n, >= c0 + COLUMNS]
    float32, C-contiguous) instead of acc, so that the outputs are written by the vector
    registers that hold them, while the next tile computes. A row past `last` stores row
    `last`'s outputs again: the same inputs in the same order, so the same values.
    """
    vectors = COLUMNS // width
    matrices = (0, 4, 6, 8) if into_out else (0, 4, 6)   # x, packed, acc (and out)
    biases = (10,) if into_out else ()

    def typer(args):
        if not (all(is_float32_array(args[k], 2) for k in matrices)
                and all(is_float32_array(args[k], 1) for k in biases)
                and all(isinstance(t, types.Integer) for k, t in enumerate(args)
                        if k not in matrices + biases)):
            return None
        return (types.void(*args),
                lambda *code_args: _tile_code(rows, width, vectors, into_out, *code_args))

    if into_out:
        @intrinsic
        def outer_tile_into(typingctx, x, i, last, p0, packed, depth, acc, a0, out, c0, bias):
            return typer((x, i, last, p0, packed, depth, acc, a0, out, c0, bias))

        return outer_tile_into

    @intrinsic
    def outer_tile(typingctx, x, i, last, p0, packed, depth, acc, a0):
        return typer((x, i, last, p0, packed, depth, acc, a0))

    return outer_tile


def _tile_code(rows, width, vectors, into_out, context, builder, signature, args):
    """The tile's LLVM IR: a loop over p whose rows x vectors sums are phi values, so that they
    stay in registers, with llvm.fma on vectors of `width` floats, TURN_STEPS steps of p a
    turn and the rest (depth % TURN_STEPS) one step a turn; then the sums stored to acc, or
    with into_out added to the bias and stored to out's rows."""
    i64 = ir.IntType(64)
    vector = ir.VectorType(ir.FloatType(), width)
    i, last, p0, depth, a0 = (context.cast(builder, args[k], signature.args[k], types.int64)
                              for k in (1, 2, 3, 5, 7))
    x_type, x_value = signature.args[0], args[0]
    x_rows = _row_pointers(context, builder, x_type, x_value, i, last, p0, rows)
    next_rows = _row_pointers(context, builder, x_type, x_value,
                              builder.add(i, ir.Constant(i64, rows)), last, p0, rows)
    packed = builder.gep(data_pointer(context, builder, signature.args[4], args[4]),
                         [builder.mul(p0, ir.Constant(i64, COLUMNS))])
    acc = builder.gep(data_pointer(context, builder, signature.args[6], args[6]),
                      [builder.mul(a0, ir.Constant(i64, COLUMNS))])
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vector, [vector] * 3), f"llvm.fma.v{width}f32")
    vector_ptrs = [builder.bitcast(builder.gep(acc, [ir.Constant(i64, k * width)]),
                                   vector.as_pointer()) for k in range(rows * vectors)]
    sums_before = [builder.load(ptr, align=4) for ptr in vector_ptrs]

    def step(p, sums):
        weights_at_p = builder.gep(packed, [builder.mul(p, ir.Constant(i64, COLUMNS))])
        weights = [builder.load(builder.bitcast(
            builder.gep(weights_at_p, [ir.Constant(i64, c * width)]), vector.as_pointer()),
            align=4) for c in range(vectors)]
        sums_after = []
        for r in range(rows):
            broadcast = _broadcast(builder, builder.load(builder.gep(x_rows[r], [p]), align=4),
                                   vector)
            for c in range(vectors):
                sums_after.append(builder.call(fma, [broadcast, weights[c],
                                                     sums[r * vectors + c]]))
        return sums_after

    def turn(k, sums):
        first = builder.mul(k, ir.Constant(i64, TURN_STEPS))
        line = builder.and_(first, ir.Constant(i64, -LINE_FLOATS))   # the line it starts in
        _prefetch_next_rows(builder, next_rows, line)
        for s in range(TURN_STEPS):
            sums = step(builder.add(first, ir.Constant(i64, s)), sums)
        return sums

    turns = builder.udiv(depth, ir.Constant(i64, TURN_STEPS))
    after_turns = carried_loop(builder, "outer_tile", ir.Constant(i64, 0), turns, sums_before,
                               turn)
    results = carried_loop(builder, "outer_tile_rest",
                           builder.mul(turns, ir.Constant(i64, TURN_STEPS)), depth, after_turns,
                           step)
    if into_out:
        _store_into_out(context, builder, signature, args, rows, width, vectors, results)
    else:
        for result, ptr in zip(results, vector_ptrs):
            builder.store(result, ptr, align=4)
    return context.get_dummy_value()


def _prefetch_next_rows(builder, next_rows, p):
    """Ask for the cache line at column p of each of the next tile's rows of x (pointers to
    them at column p0: next_rows), the line this turn reads in the tile's own rows, into L2
    (prefetcht1). A tile reads its rows side by side for at most DEPTH_STEP columns, runs the
    hardware's prefetcher did not follow: without this, the tiles of a deep product (the MLP's
    3072 inputs) waited for x. Asked into L1 as well (prefetcht0), the lines made the product
    slower whenever another program shared the core (docs/performance.md). The last tile's
    next rows are its last row again (see _row_pointers), already in the caches."""
    into_l2 = 2   # llvm.prefetch's locality: 3 is every level (t0), 2 is L2 and below (t1)
    i32 = ir.IntType(32)
    byte_pointer = ir.IntType(8).as_pointer()
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
        "llvm.prefetch.p0")
    for row in next_rows:
        address = builder.bitcast(builder.gep(row, [p]), byte_pointer)
        builder.call(fn, [address, ir.Constant(i32, 0), ir.Constant(i32, into_l2),
                          ir.Constant(i32, 1)])


def _store_into_out(context, builder, signature, args, rows, width, vectors, results):
    """out[min(i + r, last), c0 + k * width ...] = results[r * vectors + k] + bias[k * width ...]
    for r < rows, k < vectors."""
    i64 = ir.IntType(64)
    vector = ir.VectorType(ir.FloatType(), width)
    i, last, c0 = (context.cast(builder, args[k], signature.args[k], types.int64)
                   for k in (1, 2, 9))
    out_rows = _row_pointers(context, builder, signature.args[8], args[8], i, last, c0, rows)
    bias = data_pointer(context, builder, signature.args[10], args[10])
    biases = [builder.load(builder.bitcast(builder.gep(bias, [ir.Constant(i64, k * width)]),
                                           vector.as_pointer()), align=4)
              for k in range(vectors)]
    for r in range(rows):
        for k in range(vectors):
            ptr = builder.bitcast(builder.gep(out_rows[r], [ir.Constant(i64, k * width)]),
                                  vector.as_pointer())
            builder.store(builder.fadd(results[r * vectors + k], biases[k]), ptr, align=4)


def _bytes_and_row_stride(context, builder, x_type, x_value):
    """(byte pointer to a 2-D array's first element, its rows' stride in bytes)."""
    x = context.make_array(x_type)(context, builder, x_value)
    return (builder.bitcast(x.data, ir.IntType(8).as_pointer()),
            builder.extract_value(x.strides, 0))


def _row_pointers(context, builder, x_type, x_value, i, last, p0, rows):
    """Pointers to x[min(i + r, last), p0] for r < rows (x a 2-D array)."""
    x_bytes, row_bytes = _bytes_and_row_stride(context, builder, x_type, x_value)
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
outer_tile_into = tile_of(ROWS, WIDTH, into_out=True)
NO_BIAS_GROUP = np.zeros(COLUMNS, dtype=np.float32)   # a group's bias when there is none


@helper
def line_aligned_empty(shape):
    """np.empty(shape, np.float32), shape a tuple of sizes, with its first float at the start
    of a cache line. Numba aligns a new array to 32 bytes only, so half of them start in the
    middle of a line, and then every vector of WIDTH floats that the tiles load or store at a
    multiple of WIDTH floats from the start (a group's packed weights, its sums, a panel's
    logits) straddles two lines: the tile ran up to 8% slower on weights packed so
    (docs/performance.md)."""
    size = 1
    for extent in shape:
        size *= extent
    floats = np.empty(size + LINE_FLOATS, dtype=np.float32)
    skip = (-floats.ctypes.data) % (LINE_FLOATS * 4) // 4
    return floats[skip:skip + size].reshape(shape)


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

    A whole group's tiles store their outputs at their last depth step (outer_tile_into); a
    group cut short by j1 (the head's last) is copied from acc, as far as j1.
    """
    depth = x.shape[1]
    groups = (j1 - j0 + COLUMNS - 1) // COLUMNS
    for r0 in range(i0, i1, BLOCK_ROWS):
        r1 = min(r0 + BLOCK_ROWS, i1)
        acc[:groups] = ZERO
        for p0 in range(0, max(depth, 1), DEPTH_STEP):   # once for depth 0: out = b
            steps = min(DEPTH_STEP, depth - p0)
            for g in range(groups):
                c0 = j0 + g * COLUMNS
                finishing = p0 + DEPTH_STEP >= depth and c0 + COLUMNS <= j1
                bias = b[c0:c0 + COLUMNS] if b.shape[0] else NO_BIAS_GROUP
                for i in range(r0, r1, ROWS):
                    if finishing:
                        outer_tile_into(x, i, r1 - 1, p0, packed[g], steps, acc[g], i - r0,
                                        out, c0, bias)
                    else:
                        outer_tile(x, i, r1 - 1, p0, packed[g], steps, acc[g], i - r0)
        c0 = j0 + (groups - 1) * COLUMNS
        if c0 + COLUMNS > j1:
            for i in range(r0, r1):
                for c in range(j1 - c0):
                    out[i, c0 + c] = acc[groups - 1, i - r0, c] + (b[c0 + c] if b.shape[0]
                                                                  else ZERO)
