"""top_k: the k most likely tokens of each row and their log-probabilities (k small: GLTR's
"what the model expected instead").

Each row is read once to keep its k best ids in a sorted list (insertion: k is at most a few
tens, so a heap would not pay), and once more for log sum exp, as in log_softmax_at. The
ids come largest logit first; of equal logits the lower id comes first. NaN entries are never
chosen while a number remains.
"""

import numpy as np
from numba import prange

from ._jit import helper, kernel
from .exp import exp32
from .log_softmax import _log_prob


@helper
def _better(a, b):
    """Whether float32 a ranks before b: larger, or a number where b is NaN."""
    return a > b or (b != b and a == a)


@kernel
def top_k(logits, k):
    """logits [n, vocab] float32, k in 1..vocab -> (ids [n, k] int64, logprobs [n, k] float64):
    the k largest logits of each row, best first, and their log-softmax values."""
    n, vocab = logits.shape
    ids = np.empty((n, k), dtype=np.int64)
    logprobs = np.empty((n, k), dtype=np.float64)
    for i in prange(n):
        row = logits[i]
        best = ids[i]
        kept = 0
        for j in range(vocab):
            x = row[j]
            if kept == k and not _better(x, row[best[k - 1]]):
                continue
            place = kept if kept < k else k - 1   # when full, the last one drops out
            while place > 0 and _better(x, row[best[place - 1]]):
                best[place] = best[place - 1]
                place -= 1
            best[place] = j
            kept = min(kept + 1, k)
        top = row[best[0]]
        total = 0.0
        for j in range(vocab):
            total += exp32(row[j] - top)
        for r in range(k):
            logprobs[i, r] = _log_prob(row[best[r]], top, total)
    return ids, logprobs
