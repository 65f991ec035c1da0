"""Categorical and per-group sketches: integer counts only, so merges are exact in any order.

:class:`CategoricalSketch` — C features, each with up to K reference categories. Columns of
``counts[c]``: ``0..K-1`` the reference categories, then ``K`` missing, ``K+1`` null,
``K+2`` type error, ``K+3`` unseen (all unseen values).

Unseen values are tracked by their 64-bit hash (never the raw value) in ``top_k`` slots per
feature, and the slots are a function of the multiset of hashes alone, so that any split of
the events, merged in any order, gives the same bytes: the slots hold the ``top_k`` *smallest
distinct* hashes seen, sorted, each with its exact count; ``other`` counts every other unseen
event. While a feature has at most ``top_k`` distinct unseen values (the usual case: a few new
categories) the slots are exactly its unseen categories with exact counts, so the top-k by
count (:meth:`CategoricalSketch.top_unseen`) is exact; beyond that they are a uniform sample of
the distinct unseen values (a bottom-k sketch: ``top_k / (max hash / 2**64)`` estimates how
many distinct values there were) with exact counts. Order-dependent heavy-hitter summaries
(Misra-Gries, space-saving) would find more of the frequent ones, but their state depends on
the arrival order, which would break the "same bytes whatever the split" contract.

:class:`GroupSketch` — per sensitive group (G groups, plus a last row for events whose group
is missing or unseen): ``n, positive predictions, predictions known, TP, FP, TN, FN``
(labels and predictions are 1 / 0 / -1 = absent; the confusion counts need both).

>>> import numpy as np
>>> s = CategoricalSketch.empty(n_features=1, n_categories=2, top_k=2)
>>> s = s.update(np.array([[0, 1, 1, -1, -4, -4, -4, -4]], np.int32),
...              np.array([[0, 0, 0, 0, 7, 5, 6, 5]], np.uint64))
>>> s.counts.tolist(), s.top_hash.tolist(), s.top_count.tolist(), s.other.tolist()
([[1, 2, 1, 0, 0, 4]], [[5, 6]], [[2, 1]], [1])
"""

from __future__ import annotations

import numpy as np

from kernels.jit import kernel
from kernels.serial import pack_arrays, unpack_arrays

EXTRA = 4  # missing, null, type error, unseen


@kernel
def _cat_update(codes: np.ndarray, hashes: np.ndarray, counts: np.ndarray, top_hash: np.ndarray,
                top_count: np.ndarray, other: np.ndarray) -> None:
    n_feat, n = codes.shape
    k = counts.shape[1] - 4
    slots = top_hash.shape[1]
    for c in range(n_feat):
        used = 0
        while used < slots and top_count[c, used] > 0:
            used += 1
        for i in range(n):
            code = codes[c, i]
            if code >= 0 and code < k:
                counts[c, code] += 1
            elif code == -1 or code == -2:
                counts[c, k - 1 - code] += 1  # -1 -> K, -2 -> K+1
            elif code != -4:
                counts[c, k + 2] += 1  # type error, or a code the profile does not know
            else:
                counts[c, k + 3] += 1
                h = hashes[c, i]
                # slots[:used] sorted ascending: find h or where it goes
                pos = 0
                while pos < used and top_hash[c, pos] < h:
                    pos += 1
                if pos < used and top_hash[c, pos] == h:
                    top_count[c, pos] += 1
                elif pos == slots:
                    other[c] += 1  # larger than every kept hash, and the slots are full
                else:
                    if used == slots:  # evict the largest kept hash
                        other[c] += top_count[c, slots - 1]
                        used -= 1
                    for s in range(used, pos, -1):
                        top_hash[c, s] = top_hash[c, s - 1]
                        top_count[c, s] = top_count[c, s - 1]
                    top_hash[c, pos] = h
                    top_count[c, pos] = 1
                    used += 1


@kernel
def _group_update(group: np.ndarray, pred: np.ndarray, label: np.ndarray, counts: np.ndarray) -> None:
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
    def __init__(self, counts: np.ndarray, top_hash: np.ndarray, top_count: np.ndarray,
                 other: np.ndarray) -> None:
        self.counts = counts
        self.top_hash = top_hash
        self.top_count = top_count
        self.other = other

    @classmethod
    def empty(cls, n_features: int, n_categories: int, top_k: int = 16) -> "CategoricalSketch":
        """A sketch that has seen nothing.

        >>> CategoricalSketch.empty(2, 3, top_k=4).counts.shape
        (2, 7)
        """
        return cls(np.zeros((n_features, n_categories + EXTRA), np.int64),
                   np.zeros((n_features, top_k), np.uint64),
                   np.zeros((n_features, top_k), np.int64), np.zeros(n_features, np.int64))

    @property
    def n_categories(self) -> int:
        return int(self.counts.shape[1]) - EXTRA

    def update(self, codes: np.ndarray, hashes: np.ndarray) -> "CategoricalSketch":
        """Absorb codes [C, N] (int32, :mod:`kernels.batch` encoding) and the unseen values'
        hashes [C, N]; returns self. Codes the profile does not know count as type errors.

        >>> s = CategoricalSketch.empty(1, 1).update(np.array([[0, 5]], np.int32),
        ...                                          np.zeros((1, 2), np.uint64))
        >>> s.counts.tolist()
        [[1, 0, 0, 1, 0]]
        """
        codes = np.ascontiguousarray(codes, np.int32)
        if codes.shape[1]:
            _cat_update(codes, np.ascontiguousarray(hashes, np.uint64), self.counts,
                        self.top_hash, self.top_count, self.other)
        return self

    def merge(self, other: "CategoricalSketch") -> "CategoricalSketch":
        """A new sketch holding both: the smallest ``top_k`` distinct hashes of the two, counts
        added, the rest moved to ``other`` (exact: a hash among the smallest of the union is
        among the smallest of each part, so both parts kept its full count).

        >>> a = CategoricalSketch.empty(1, 0, 1).update(np.array([[-4]], np.int32),
        ...                                              np.array([[9]], np.uint64))
        >>> b = CategoricalSketch.empty(1, 0, 1).update(np.array([[-4]], np.int32),
        ...                                              np.array([[3]], np.uint64))
        >>> m = a.merge(b)
        >>> m.top_hash.tolist(), m.top_count.tolist(), m.other.tolist()
        ([[3]], [[1]], [1])
        """
        k = self.top_hash.shape[1]
        th = np.zeros_like(self.top_hash)
        tc = np.zeros_like(self.top_count)
        oth = self.other + other.other
        for c in range(self.counts.shape[0]):  # per feature, not per event
            h = np.concatenate([self.top_hash[c], other.top_hash[c]])
            n = np.concatenate([self.top_count[c], other.top_count[c]])
            keep = n > 0
            uh, inv = np.unique(h[keep], return_inverse=True)  # sorted ascending
            un = np.zeros(uh.size, np.int64)
            np.add.at(un, inv, n[keep])
            th[c, : min(k, uh.size)] = uh[:k]
            tc[c, : min(k, uh.size)] = un[:k]
            oth[c] += int(un[k:].sum())
        return CategoricalSketch(self.counts + other.counts, th, tc, oth)

    def top_unseen(self, c: int, k: int | None = None) -> list[tuple[int, int]]:
        """``(hash, count)`` of feature ``c``'s kept unseen values, most frequent first (ties
        by hash); exact while the feature has at most ``top_k`` distinct unseen values.

        >>> s = CategoricalSketch.empty(1, 0, 4).update(np.array([[-4, -4, -4]], np.int32),
        ...                                              np.array([[8, 2, 8]], np.uint64))
        >>> s.top_unseen(0)
        [(8, 2), (2, 1)]
        """
        pairs = [(int(h), int(n)) for h, n in zip(self.top_hash[c], self.top_count[c]) if n > 0]
        return sorted(pairs, key=lambda p: (-p[1], p[0]))[:k]

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
        """Counts for ``n_groups`` groups plus the "no group" row.

        >>> g = GroupSketch.empty(2).update(np.array([0, 1, -1], np.int32),
        ...     np.array([1, 0, 1], np.int8), np.array([1, 1, -1], np.int8))
        >>> g.counts.tolist()
        [[1, 1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 0, 0, 1], [1, 1, 1, 0, 0, 0, 0]]
        """
        return cls(np.zeros((n_groups + 1, len(cls.COLUMNS)), np.int64))

    def update(self, group: np.ndarray, pred: np.ndarray, label: np.ndarray) -> "GroupSketch":
        """Absorb group [N] (int32), prediction and label [N] (int8: 1, 0, -1 absent)."""
        if group.shape[0]:
            _group_update(np.ascontiguousarray(group, np.int32),
                          np.ascontiguousarray(pred, np.int8),
                          np.ascontiguousarray(label, np.int8), self.counts)
        return self

    def merge(self, other: "GroupSketch") -> "GroupSketch":
        """A new sketch: the counts added (exact, any order)."""
        return GroupSketch(self.counts + other.counts)

    def to_bytes(self) -> bytes:
        return pack_arrays([self.counts])

    @classmethod
    def from_bytes(cls, b: bytes) -> "GroupSketch":
        return cls(*unpack_arrays(b))
