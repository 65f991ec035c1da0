"""Categorical and per-group sketches: integer counts only, so merges are exact in any order.

:class:`CategoricalSketch` — C features, each with up to K reference categories. Columns of
``counts[c]``: ``0..K-1`` the reference categories, then ``K`` missing, ``K+1`` null,
``K+2`` type error, ``K+3`` unseen (all unseen values). Unseen values are also tracked by
hash in a bounded table of ``top_k`` slots per feature; once the table is full, further new
hashes count in ``other``. (Merging two tables keeps the largest counts, ties by hash, and
moves the rest to ``other``: deterministic, and the unseen total stays exact.)

:class:`GroupSketch` — per sensitive group (G groups, plus a last row for events whose group
is missing or unseen): ``n, positive predictions, predictions known, TP, FP, TN, FN``
(labels and predictions are 1 / 0 / -1 = absent; the confusion counts need both).

>>> import numpy as np
>>> s = CategoricalSketch.empty(n_features=1, n_categories=2, top_k=2)
>>> s = s.update(np.array([[0, 1, 1, -1, -4, -4, -4]], np.int32),
...              np.array([[0, 0, 0, 0, 5, 6, 7]], np.uint64))
>>> s.counts.tolist(), s.top_hash.tolist(), s.top_count.tolist(), s.other.tolist()
([[1, 2, 1, 0, 0, 3]], [[5, 6]], [[1, 1]], [1])
"""

from __future__ import annotations

import numba as nb
import numpy as np

from kernels.serial import pack_arrays, unpack_arrays

EXTRA = 4  # missing, null, type error, unseen


@nb.njit(nogil=True, cache=True)
def _cat_update(codes, hashes, counts, top_hash, top_count, other):
    n_feat, n = codes.shape
    k = counts.shape[1] - 4
    slots = top_hash.shape[1]
    for c in range(n_feat):
        for i in range(n):
            code = codes[c, i]
            if code >= 0:
                counts[c, code] += 1
            elif code == -4:
                counts[c, k + 3] += 1
                h = hashes[c, i]
                placed = False
                for s in range(slots):
                    if top_count[c, s] > 0 and top_hash[c, s] == h:
                        top_count[c, s] += 1
                        placed = True
                        break
                    if top_count[c, s] == 0:
                        top_hash[c, s] = h
                        top_count[c, s] = 1
                        placed = True
                        break
                if not placed:
                    other[c] += 1
            else:
                counts[c, k - 1 - code] += 1  # -1 -> K, -2 -> K+1, -3 -> K+2


@nb.njit(nogil=True, cache=True)
def _group_update(group, pred, label, counts):
    g_rows = counts.shape[0] - 1
    for i in range(group.shape[0]):
        g = group[i]
        if g < 0 or g >= g_rows:
            g = g_rows
        counts[g, 0] += 1
        p = pred[i]
        if p >= 0:
            counts[g, 2] += 1
            if p == 1:
                counts[g, 1] += 1
            y = label[i]
            if y == 1:
                if p == 1:
                    counts[g, 3] += 1
                else:
                    counts[g, 6] += 1
            elif y == 0:
                if p == 1:
                    counts[g, 4] += 1
                else:
                    counts[g, 5] += 1


class CategoricalSketch:
    def __init__(self, counts, top_hash, top_count, other) -> None:
        self.counts = counts
        self.top_hash = top_hash
        self.top_count = top_count
        self.other = other

    @classmethod
    def empty(cls, n_features: int, n_categories: int, top_k: int = 16) -> "CategoricalSketch":
        return cls(np.zeros((n_features, n_categories + EXTRA), np.int64),
                   np.zeros((n_features, top_k), np.uint64),
                   np.zeros((n_features, top_k), np.int64), np.zeros(n_features, np.int64))

    @property
    def n_categories(self) -> int:
        return self.counts.shape[1] - EXTRA

    def update(self, codes: np.ndarray, hashes: np.ndarray) -> "CategoricalSketch":
        codes = np.ascontiguousarray(codes, np.int32)
        if codes.shape[1]:
            _cat_update(codes, np.ascontiguousarray(hashes, np.uint64), self.counts,
                        self.top_hash, self.top_count, self.other)
        return self

    def merge(self, other: "CategoricalSketch") -> "CategoricalSketch":
        k = self.top_hash.shape[1]
        th = np.zeros_like(self.top_hash)
        tc = np.zeros_like(self.top_count)
        oth = self.other + other.other
        for c in range(self.counts.shape[0]):  # per feature, not per event
            h = np.concatenate([self.top_hash[c], other.top_hash[c]])
            n = np.concatenate([self.top_count[c], other.top_count[c]])
            keep = n > 0
            h, n = h[keep], n[keep]
            uh, inv = np.unique(h, return_inverse=True)
            un = np.bincount(inv, weights=n, minlength=uh.size).astype(np.int64)
            order = np.lexsort((uh, -un))  # largest count first, ties by hash
            top = order[:k]
            th[c, : top.size] = uh[top]
            tc[c, : top.size] = un[top]
            oth[c] += int(un[order[k:]].sum())
        return CategoricalSketch(self.counts + other.counts, th, tc, oth)

    missing = property(lambda self: self.counts[:, -4])
    null = property(lambda self: self.counts[:, -3])
    type_error = property(lambda self: self.counts[:, -2])
    unseen = property(lambda self: self.counts[:, -1])

    def state_arrays(self) -> list[np.ndarray]:
        return [self.counts, self.top_hash, self.top_count, self.other]

    def to_bytes(self) -> bytes:
        return pack_arrays(self.state_arrays())

    @classmethod
    def from_bytes(cls, b: bytes) -> "CategoricalSketch":
        return cls(*unpack_arrays(b))


class GroupSketch:
    COLUMNS = ("n", "positive", "predicted", "tp", "fp", "tn", "fn")

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = counts

    @classmethod
    def empty(cls, n_groups: int) -> "GroupSketch":
        return cls(np.zeros((n_groups + 1, len(cls.COLUMNS)), np.int64))

    def update(self, group: np.ndarray, pred: np.ndarray, label: np.ndarray) -> "GroupSketch":
        if group.shape[0]:
            _group_update(np.ascontiguousarray(group, np.int32),
                          np.ascontiguousarray(pred, np.int8),
                          np.ascontiguousarray(label, np.int8), self.counts)
        return self

    def merge(self, other: "GroupSketch") -> "GroupSketch":
        return GroupSketch(self.counts + other.counts)

    def to_bytes(self) -> bytes:
        return pack_arrays([self.counts])

    @classmethod
    def from_bytes(cls, b: bytes) -> "GroupSketch":
        return cls(*unpack_arrays(b))
