"""take_piece, the counter the products' threads take their pieces from: every piece is handed
out exactly once however the threads interleave, and each thread's last call (the one that
finds none left) still moves the counter on by one."""

import numba
import numpy as np
import pytest
from numba import njit, prange

from gpt2numba.kernels.pieces import take_piece


@njit(parallel=True)
def take_every_piece(pieces, loops):
    """How many times each of `pieces` pieces was taken by `loops` parallel takers, and the
    counter ([1] int64) at the end."""
    counter = np.zeros(1, dtype=np.int64)
    taken = np.zeros(pieces, dtype=np.int64)
    for _ in prange(loops):
        piece = take_piece(counter)
        while piece < pieces:
            taken[piece] += 1
            piece = take_piece(counter)
    return taken, counter


@pytest.mark.parametrize("pieces", [0, 1, 7, 1_000_000])
def test_every_piece_is_taken_once(pieces):
    loops = 4 * numba.get_num_threads()   # more takers than threads: some find nothing left
    taken, counter = take_every_piece(pieces, loops)
    assert np.all(taken == 1)
    assert counter[0] == pieces + loops
