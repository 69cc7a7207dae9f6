"""projection: y = x @ W + b, GPT-2's four projections (c_attn, c_proj, c_fc, the MLP's c_proj),
with W packed at load (pack.py) and computed as sums of outer products (outer_tile.py).

`linear` (linear.py) computes the same product from weights stored [out, in], as dot products;
the tied head keeps it, since its weight is the token embedding, which the embedding reads by
rows. This kernel has no horizontal sums and no packing to do at run time, which is what makes
it the faster of the two on every number of rows (docs/performance.md has the runs).

The parallel pieces are linear's (`linear.split`): panels of PANEL = 2 groups of outputs over
blocks of rows, cut for the threads as linear cuts them, and here never more than BLOCK_ROWS
rows (linear would pack its weights again for each block): more, smaller pieces, which the
threads take one at a time (pieces.py), so that they end closer together. A piece is
`outer_panel`: its rows stay in L2, their sums accumulated in the thread's buffer. The buffers are
allocated once per call, by the calling thread: arrays allocated by the threads of a parallel
region would come from each thread's own heap, whose freed pages glibc may hand back to the
OS, to be faulted in afresh by the next forward (gpt2numba/heap.py).
"""

import numpy as np
from numba import get_thread_id, prange
from numba.extending import register_jitable

from ._jit import kernel
from .linear import GROUPS_PER_PANEL, piece_bounds, split
from .outer_tile import BLOCK_ROWS, COLUMNS, line_aligned_empty, outer_panel, tile_rows
from .pieces import take_piece
from .threads import threads_now


@register_jitable
def projection_split(n, m, threads):
    """(panels, rows): projection's pieces for x [n, in] -> [n, m] on `threads` threads,
    linear.split's with blocks of at most BLOCK_ROWS rows (see the module docstring)."""
    panels, rows = split(n, m, threads)
    return panels, min(rows, BLOCK_ROWS)


@kernel
def projection(x, w, b):
    """x [n, in] @ W + b -> [n, out] float32; W packed as pack_checked makes it, w [ceil(out /
    COLUMNS), in, COLUMNS] float32; b [out] float32 (its length is the number of outputs)."""
    n, m = x.shape[0], b.shape[0]
    out = np.empty((n, m), dtype=np.float32)
    threads = threads_now()
    panels, rows = projection_split(n, m, threads)
    blocks = (n + rows - 1) // rows
    sums = line_aligned_empty((threads, GROUPS_PER_PANEL, tile_rows(rows), COLUMNS))
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(threads):
        thread_sums = sums[get_thread_id()]
        piece = take_piece(counter)
        while piece < panels * blocks:
            panel, i0, i1, j0, j1 = piece_bounds(piece, blocks, rows, n, m)
            g0 = panel * GROUPS_PER_PANEL
            outer_panel(x, w[g0:g0 + GROUPS_PER_PANEL], thread_sums, out, b, i0, i1, j0, j1)
            piece = take_piece(counter)
    return out
