"""Byte-pair merges: the textbook loop and the fast one, which must agree id for id.

:func:`bpe_reference` is GPT-2's merge rule written plainly on token strings, in the manner of
tiktoken's educational module but with the rule of OpenAI's encoder.py (every occurrence of the
best pair merges in one step). :class:`BytePairEncoder` runs the same merges on integer ids with
a dict of pair ranks, and with a heap for long pieces; the tests compare the two on many words,
as ``linear_reference`` is compared with ``linear``.
"""

from __future__ import annotations

import heapq
import itertools
import operator

from gpt2numba.tokenizer_files import BYTE_ENCODER, merge_problem

# Pieces longer than this (in bytes) are merged with a heap in O(n log n) instead of the
# quadratic rescan: a 100 KB run of spaces or a long base64 string stays fast.
_LONG_PIECE = 64

_INF = float("inf")


def bpe_reference(data: bytes, vocab: dict[str, int], ranks: dict[tuple[str, str], int]
                  ) -> list[int]:
    """The token ids of one piece's UTF-8 bytes by GPT-2's merge rule, plainly.

    `vocab` maps token -> id and `ranks` maps a pair of tokens -> its rank in merges.txt (0 is
    the best). :class:`BytePairEncoder` must give exactly these ids.
    """
    parts = [BYTE_ENCODER[b] for b in data]
    while len(parts) > 1:
        # The best-ranked adjacent pair...
        rank, left, right = min((ranks.get(pair, _INF), *pair) for pair in zip(parts, parts[1:]))
        if rank == _INF:
            break
        # ...is merged everywhere it occurs, left to right.
        merged, i = [], 0
        while i < len(parts):
            if parts[i] == left and i + 1 < len(parts) and parts[i + 1] == right:
                merged.append(left + right)
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return [vocab[part] for part in parts]


class BytePairEncoder:
    """GPT-2's merges as tables of token ids, and the merge loop over them: call it with a
    piece's UTF-8 bytes for its token ids."""

    def __init__(self, vocab: dict[str, int], tokens: list[str], merges: list[tuple[str, str]]):
        """Tables for `merges` (pairs of tokens, best first) over a checked `vocab` (token ->
        id) whose tokens in id order are `tokens`. MergeError for a merge whose tokens or
        result are not in `vocab`, or that appears twice."""
        # byte value -> starting token id. When every one is < 256 (GPT-2: ids 0..255),
        # bytes.translate maps a whole piece to its starting ids in one C call.
        self._byte_ids = byte_ids = [vocab[BYTE_ENCODER[b]] for b in range(256)]
        self.byte_table = bytes(byte_ids) if max(byte_ids) < 256 else None

        # Pair key (left_id << shift | right_id) -> rank; rank -> merged id. Built with
        # C-level iteration only: this runs over 50000 merges at every load.
        self._shift = shift = max(16, len(vocab).bit_length())
        get = vocab.__getitem__
        lefts = list(map(operator.itemgetter(0), merges))
        rights = list(map(operator.itemgetter(1), merges))
        try:
            left_ids = map(operator.lshift, map(get, lefts), itertools.repeat(shift))
            keys = list(map(operator.or_, left_ids, map(get, rights)))
            joined = list(map(operator.add, lefts, rights))
            first = get(joined[0]) if joined else 0
            if tokens[first:first + len(joined)] == joined:
                # GPT-2's layout: merge k makes token first + k (first = 256).
                merged: range | list[int] = range(first, first + len(joined))
            else:
                merged = list(map(get, joined))
        except (KeyError, TypeError):
            raise merge_problem(vocab, merges) from None
        self._merged = merged
        self._pair_rank: dict[int, int] = dict(zip(keys, range(len(keys))))
        if len(self._pair_rank) != len(keys):
            raise merge_problem(vocab, merges)

    def __len__(self) -> int:
        """The number of merges."""
        return len(self._merged)

    def __call__(self, data: bytes) -> list[int]:
        """The BPE merges of one piece's UTF-8 bytes, as token ids."""
        table = self.byte_table
        if table is not None:
            ids = list(data.translate(table))
        else:
            byte_ids = self._byte_ids
            ids = [byte_ids[b] for b in data]
        if len(ids) < 2:
            return ids
        if len(ids) > _LONG_PIECE:
            return self.merge_long(ids)
        return self._merge_short(ids)

    def _merge_short(self, ids: list[int]) -> list[int]:
        """The merges of a short piece's ids (at least 2): rescan for the best pair each round."""
        get = self._pair_rank.get
        shift = self._shift
        merged = self._merged
        inf = _INF
        while True:
            # The best-ranked adjacent pair.
            best = inf
            left = ids[0]
            for right in ids[1:]:
                r = get(left << shift | right, inf)
                if r < best:
                    best = r
                    best_pair = (left, right)
                left = right
            if best is inf:
                return ids
            a, b = best_pair
            m = merged[best]
            # Merge every occurrence of (a, b), left to right.
            out = []
            i = 0
            n = len(ids)
            while i < n:
                x = ids[i]
                if x == a and i + 1 < n and ids[i + 1] == b:
                    out.append(m)
                    i += 2
                else:
                    out.append(x)
                    i += 1
            if len(out) == 1:
                return out
            ids = out

    def merge_long(self, ids: list[int]) -> list[int]:
        """The same merges as :meth:`__call__`, in O(n log n) for long pieces.

        A doubly linked list of tokens and a heap of (rank, position, left id, right id) of
        adjacent pairs. Each round takes every occurrence of the best-ranked pair, left to
        right, exactly as the quadratic loop does; pairs created by a round enter the heap
        after it.
        """
        get = self._pair_rank.get
        shift = self._shift
        n = len(ids)
        tok = list(ids)               # a token merged into its left neighbour becomes -1
        nxt = list(range(1, n + 1))   # n means "none"
        prv = list(range(-1, n - 1))  # -1 means "none"
        heap = []
        for i in range(n - 1):
            r = get(tok[i] << shift | tok[i + 1])
            if r is not None:
                heap.append((r, i, tok[i], tok[i + 1]))
        heapq.heapify(heap)
        while heap:
            rank = heap[0][0]
            created = _merge_round(heap, rank, self._merged[rank], tok, nxt, prv)
            self._push_pairs_beside(heap, created, tok, nxt, prv)
        return _in_list_order(tok, nxt)

    def _push_pairs_beside(self, heap, created, tok, nxt, prv) -> None:
        """Push onto the heap the pairs that the tokens a round made (at positions `created`)
        now form with their neighbours."""
        get = self._pair_rank.get
        shift = self._shift
        push = heapq.heappush
        n = len(tok)
        for i in created:
            if tok[i] < 0:   # merged into its left neighbour later in the same round
                continue
            p = prv[i]
            if p >= 0:
                r = get(tok[p] << shift | tok[i])
                if r is not None:
                    push(heap, (r, p, tok[p], tok[i]))
            k = nxt[i]
            if k < n:
                r = get(tok[i] << shift | tok[k])
                if r is not None:
                    push(heap, (r, i, tok[i], tok[k]))


def _merge_round(heap, rank, m, tok, nxt, prv) -> list[int]:
    """Merge every occurrence of the pair of `rank` on top of the heap into token `m`, left to
    right, in the linked list tok, nxt, prv; pop its entries. Returns the merged positions."""
    n = len(tok)
    pop = heapq.heappop
    created = []
    while heap and heap[0][0] == rank:
        _, i, a, b = pop(heap)
        # Stale entries: the left token was merged away (-1) or changed, or its right
        # neighbour is no longer b.
        if tok[i] != a:
            continue
        j = nxt[i]
        if j >= n or tok[j] != b:
            continue
        tok[i] = m
        tok[j] = -1
        k = nxt[j]
        nxt[i] = k
        if k < n:
            prv[k] = i
        created.append(i)
    return created


def _in_list_order(tok, nxt) -> list[int]:
    """The tokens of the linked list tok, nxt, from position 0."""
    n = len(tok)
    out = []
    i = 0
    while i < n:
        out.append(tok[i])
        i = nxt[i]
    return out
