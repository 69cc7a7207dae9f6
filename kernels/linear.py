"""linear: y = x @ W + b with W stored as w[out, in]: GPT-2's head, logits = h @ wte.T.

Weight layout: w[out, in], so that y[i, j] = x[i] . w[j] is a dot product of two contiguous
rows. The tied head uses the token embedding wte [vocab, n_embd] as it is; the four
projections, whose checkpoints store [in, out], are packed at load for `projection` instead
(projection.py), which is faster but needs its own copy of the weight.
A row of w may be longer than `in` (BLAS's "leading dimension"): only its first `in` floats
are read.

The bias is optional, as llm.c's `bias != NULL`: pass NO_BIAS, an empty array, for none (the
head has none). Not None: Numba compiles one version of a kernel per argument type, and a None
beside the projections' arrays would compile all of `linear` a second time on the first run;
NO_BIAS is read-only like the model's parameters, so it is the very type of their biases.

Two versions side by side:
- `linear_reference`: one dot product per output. The algorithm, plainly.
- `linear`: the same sums, scheduled for the caches and registers. The outputs are cut into
  panels of PANEL columns; a panel's weights (PANEL x in x 4 bytes: 288 KiB at in = 768)
  stay in L2 while the rows of x pass over them. Under PACKED_MIN_ROWS rows, each panel is
  computed in dot-product register tiles chosen for the machine (matmul.py: 4 x 3 on AVX2,
  4 x 6 on AVX-512). From PACKED_MIN_ROWS rows on (the head of a scored text), a piece first
  packs its panel's weights into its thread's buffer (`pack_rows`), then computes sums of outer
  products (outer_tile.py), as `projection` does with weights packed at load: the packing is
  paid once per piece, and repaid by that many rows. `python benchmarks/bench_kernels.py`
  measures linear and projection beside OpenBLAS.

The parallel loop runs over pieces: a panel's outputs over a block of rows. Every piece is
independent, and the threads take them one at a time (pieces.py), so a region of equal pieces
lasts as long as ceil(pieces / threads) of them: `busy_share` is the share of the threads' time
the pieces can keep busy. With one block of all the rows, the pieces are the panels (8 for
gpt2's 768 outputs): enough for a few threads, while 64 threads would leave 56 idle. So `split`
cuts the rows into blocks only when the panels alone would keep less than BUSY_ENOUGH of the
threads busy, and then into the fewest blocks that do (or, when none do, the best share), with
at least MIN_BLOCK_ROWS rows in a block, so that each piece still runs a panel's weights, read
from L2, over many rows. On 1 or 2 threads GPT-2's panels need no split: its pieces, and their
order, are the panels. The pieces go panel by panel, a panel's row blocks one after the other,
so that the threads work on few panels' weights at a time. Blocks are a multiple of the tiles'
rows (4, and ROWS from PACKED_MIN_ROWS rows on), so tiles cover them whole.
`python benchmarks/scaling.py` prints the pieces and their share for GPT-2's shapes.
"""

import numpy as np
from numba import get_thread_id, prange
from numba.extending import register_jitable

from ._jit import helper, kernel
from .matmul import dot, matmul_block
from .outer_tile import BLOCK_ROWS, COLUMNS, ROWS, line_aligned_empty, outer_panel, tile_rows
from .pieces import take_piece
from .threads import threads_now

PANEL = 96
GROUPS_PER_PANEL = PANEL // COLUMNS
# From this many rows in a piece, its panel's weights are packed and its outputs computed as
# sums of outer products (see the module docstring).
PACKED_MIN_ROWS = 128
PACK_STEP = 16   # pack_rows' steps of p: a cache line of floats
# The parallel pieces (see the module docstring): rows are cut into blocks only while the panels
# keep less than BUSY_ENOUGH of the threads busy, into blocks of MIN_BLOCK_ROWS rows or more,
# each a multiple of the small tiles' 4 rows (and of the outer-product tile's too from
# PACKED_MIN_ROWS on).
MIN_BLOCK_ROWS = 16
BUSY_ENOUGH = 0.9
SMALL_TILE_ROWS = 4
PACKED_BLOCK_ALIGN = int(np.lcm(SMALL_TILE_ROWS, ROWS))
ZERO = np.float32(0.0)
NO_BIAS = np.empty(0, dtype=np.float32)
NO_BIAS.flags.writeable = False


@kernel
def linear_reference(x, w, b):
    """x [n, in] @ w[out, :in].T + b [out] or NO_BIAS -> [n, out], float32; a dot per output.
    w is [out, >= in]."""
    n, m = x.shape[0], w.shape[0]
    out = np.empty((n, m), dtype=np.float32)
    for i in prange(n):
        for j in range(m):
            out[i, j] = dot(x, i, w, j, x.shape[1])
            if b.shape[0]:
                out[i, j] += b[j]
    return out


@register_jitable
def busy_share(pieces, threads):
    """The share of `threads` equally fast threads' time that `pieces` equal pieces keep busy,
    taken one at a time (pieces.py): 1.0 when the pieces divide evenly; for 0 pieces, 1.0
    (there is nothing to wait for)."""
    if pieces == 0:
        return 1.0
    most = (pieces + threads - 1) // threads   # the pieces of the busiest thread
    return pieces / (most * threads)


@register_jitable
def rows_in_blocks(n, blocks):
    """Rows per block when n rows are cut into `blocks` blocks: n / blocks rounded up to a
    multiple of the tiles' rows (see the module docstring)."""
    rows = (n + blocks - 1) // blocks
    align = PACKED_BLOCK_ALIGN if rows >= PACKED_MIN_ROWS else SMALL_TILE_ROWS
    return (rows + align - 1) // align * align


@register_jitable
def split(n, m, threads):
    """(panels, rows): `linear`'s parallel pieces for x [n, in] -> [n, m] on `threads` threads,
    ceil(m / PANEL) panels of outputs times blocks of `rows` rows (the last ones shorter), so
    ceil(n / rows) blocks. One block of all n rows unless the panels alone keep less than
    BUSY_ENOUGH of the threads busy (see the module docstring)."""
    panels = (m + PANEL - 1) // PANEL
    rows, share = max(n, 1), busy_share(panels, threads)
    blocks = 2
    while share < BUSY_ENOUGH and blocks <= n // MIN_BLOCK_ROWS:
        candidate = rows_in_blocks(n, blocks)
        candidate_share = busy_share(panels * ((n + candidate - 1) // candidate), threads)
        if candidate_share > share:
            rows, share = candidate, candidate_share
        blocks += 1
    return panels, rows


@register_jitable
def piece_bounds(piece, blocks, rows, n, m):
    """(panel, i0, i1, j0, j1): the parallel piece `piece` of split's pieces for [n, in] ->
    [n, m] in blocks of `rows` rows (`blocks` of them), panel `piece // blocks`'s outputs
    j0..j1-1 over rows i0..i1-1, its block `piece % blocks`: a panel's blocks one after the
    other."""
    panel, block = piece // blocks, piece % blocks
    i0, j0 = block * rows, panel * PANEL
    return panel, i0, min(i0 + rows, n), j0, min(j0 + PANEL, m)


@helper
def pack_rows(w, j0, j1, depth, packed):
    """packed[g, p, c] = w[j0 + g * COLUMNS + c, p] for the rows j0..j1 of w [m, >= depth], in
    the groups they fill; zeros after j1 in the last one. packed [>= groups, >= depth, COLUMNS]
    float32.

    PACK_STEP values of p at a time, all rows: each row's line of w is read whole, and the
    lines of packed it fills (PACK_STEP of each group) stay in L1 until they are full."""
    for p0 in range(0, depth, PACK_STEP):
        p1 = min(p0 + PACK_STEP, depth)
        for j in range(j0, j1):
            g, c = (j - j0) // COLUMNS, (j - j0) % COLUMNS
            wj = w[j]
            for p in range(p0, p1):
                packed[g, p, c] = wj[p]
    for j in range(j1, j0 + (j1 - j0 + COLUMNS - 1) // COLUMNS * COLUMNS):
        g, c = (j - j0) // COLUMNS, (j - j0) % COLUMNS
        for p in range(depth):
            packed[g, p, c] = ZERO


@register_jitable
def panel_buffers(threads, rows, depth):
    """(packs, sums): the pieces' per-thread buffers for blocks of `rows` rows of depth `depth`,
    packed weights [threads, GROUPS_PER_PANEL, depth, COLUMNS] and the outer products' sums
    [threads, GROUPS_PER_PANEL, tile_rows(min(rows, BLOCK_ROWS)), COLUMNS] float32; below
    PACKED_MIN_ROWS rows, where no piece packs, both hold 0 floats per thread. Allocated by
    the kernel's calling thread, not in the pieces (projection.py says why)."""
    packing = rows >= PACKED_MIN_ROWS
    packs = line_aligned_empty((threads, GROUPS_PER_PANEL, depth if packing else 0, COLUMNS))
    sums = line_aligned_empty((threads, GROUPS_PER_PANEL,
                               tile_rows(min(rows, BLOCK_ROWS)) if packing else 0, COLUMNS))
    return packs, sums


@helper
def panel_product(x, w, b, out, i0, i1, j0, j1, packed, sums):
    """out[i0:i1, j0:j1] = x[i0:i1] @ w[j0:j1, :in].T + b[j0:j1] (no bias for NO_BIAS): one
    piece of `linear`, a panel of at most PANEL outputs over a block of rows. With a thread's
    buffers from panel_buffers (packed, sums), the panel's weights are packed and its outputs
    computed as sums of outer products; with empty ones (under PACKED_MIN_ROWS rows), in the
    dot tiles."""
    if sums.shape[1]:
        pack_rows(w, j0, j1, x.shape[1], packed)
        outer_panel(x, packed, sums, out, b, i0, i1, j0, j1)
    else:
        matmul_block(x, w, out, i0, i1, j0, j1, x.shape[1])
        if b.shape[0]:
            for i in range(i0, i1):
                for j in range(j0, j1):
                    out[i, j] += b[j]


@kernel
def linear(x, w, b):
    """x [n, in] @ w[out, :in].T + b [out] or NO_BIAS -> [n, out], float32; pieces (a panel of
    outputs over a block of rows) in parallel. w is [out, >= in]."""
    n, m = x.shape[0], w.shape[0]
    out = np.empty((n, m), dtype=np.float32)
    threads = threads_now()
    panels, rows = split(n, m, threads)
    blocks = (n + rows - 1) // rows
    packs, sums = panel_buffers(threads, rows, x.shape[1])
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(threads):
        thread = get_thread_id()
        piece = take_piece(counter)
        while piece < panels * blocks:
            panel, i0, i1, j0, j1 = piece_bounds(piece, blocks, rows, n, m)
            panel_product(x, w, b, out, i0, i1, j0, j1, packs[thread], sums[thread])
            piece = take_piece(counter)
    return out
