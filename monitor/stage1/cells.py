"""Where a joined prediction counts: its cell of slice keys and sensitive groups (see
:class:`Cells`), used by the label join of stage 1 and the performance merge of stage 2."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from kernels.performance import PerformanceSketch


@dataclass(frozen=True)
class Cells:
    """Where a joined row counts. Slice keys ``k = 0..K-1`` (``n_slices[k]`` slices each, the
    last one "other") and sensitive groups (``n_groups``, the last one "no group"); codes out
    of range go to the last slice / group.

    Two numberings:

    - a row's **code** (:meth:`of`; what waits in the pending store): all its slices and its
      group in one int32, mixed radix ``((s_0 * S_1 + s_1) * ... ) * G + g``;
    - the sketch's **cells** (``n_cells``): one block per key, ``G * S_k`` cells each, cell
      ``offset_k + s_k * G + g``. A row counts once in every key's block (:meth:`spread`), so
      each block alone holds every row: block 0 is the whole window, the cells of slice s of
      key k are :meth:`slice_cells`, and memory grows with the *sum* of the slice counts,
      never their product.

    With one key, code and cell are the same number (the layout before keys were several).
    ``n_slices`` is an int (one key) or one int per key. Histogram and calibration bins of
    the sketches ride along.

    >>> c = Cells(n_slices=(3, 2), n_groups=2)
    >>> c.n_cells, c.n_codes, c.slice_cells(0, 1), c.slice_cells(1, 0)
    (10, 12, [2, 3], [6, 7])
    >>> code = c.of(np.array([[1, 0], [7, 1]]), np.array([1, 0]), 2)  # 7: not a top slice
    >>> cells, rows = c.spread(code)
    >>> cells.tolist(), rows.tolist(), c.count(code).tolist()
    ([3, 4, 7, 8], [0, 1, 0, 1], [0, 0, 0, 1, 1, 0, 0, 1, 1, 0])
    """

    n_slices: Any = 1  # int, or a tuple with one count per key
    n_groups: int = 1
    n_bins: int = 200
    n_calibration_bins: int = 10

    def __post_init__(self) -> None:
        k = self.n_slices
        per_key = (int(k),) if np.ndim(k) == 0 else tuple(int(x) for x in k)
        if not per_key or min(per_key) < 1 or self.n_groups < 1:
            raise ValueError("Cells: at least one key, one slice per key and one group")
        object.__setattr__(self, "n_slices", per_key[0] if len(per_key) == 1 else per_key)
        if int(np.prod(per_key, dtype=np.float64)) * self.n_groups >= 2**31:
            raise ValueError("Cells: the slices of all keys times the groups exceed 2**31 "
                             "codes; lower labels.slices.top_k or use fewer keys")

    @property
    def per_key(self) -> tuple[int, ...]:
        """Slices per key (each with its "other")."""
        k = self.n_slices
        return (k,) if isinstance(k, int) else k

    @property
    def n_keys(self) -> int:
        return len(self.per_key)

    @property
    def n_cells(self) -> int:
        return self.n_groups * sum(self.per_key)

    @property
    def n_codes(self) -> int:
        return self.n_groups * int(np.prod(self.per_key))

    def offset(self, key: int) -> int:
        """The first cell of ``key``'s block."""
        return self.n_groups * sum(self.per_key[:key])

    def key_cells(self, key: int = 0) -> list[int]:
        """Every cell of one key's block: all rows once."""
        return list(range(self.offset(key), self.offset(key) + self.n_groups
                          * self.per_key[key]))

    def slice_cells(self, key: int, s: int) -> list[int]:
        """The cells of slice ``s`` of ``key`` (one per group)."""
        o = self.offset(key) + s * self.n_groups
        return list(range(o, o + self.n_groups))

    def group_cells(self, g: int, key: int = 0) -> list[int]:
        """The cells of group ``g`` (every slice of ``key``: all rows of the group once)."""
        return [self.offset(key) + s * self.n_groups + g for s in range(self.per_key[key])]

    def of(self, slice_code: np.ndarray | None, group_code: np.ndarray | None, n: int
           ) -> np.ndarray:
        """Row codes of ``n`` rows. ``slice_code``: None (every row "other"), an array [n]
        (one key) or [n, K] (one column per key)."""
        g = self._clip(group_code, self.n_groups, n)
        if slice_code is None:
            cols = [None] * self.n_keys
        else:
            sc = np.asarray(slice_code)
            if sc.ndim == 1:
                sc = sc[:, None]
            if sc.shape[1] != self.n_keys:
                raise ValueError(f"Cells: {sc.shape[1]} slice columns for {self.n_keys} keys")
            cols = [sc[:, k] for k in range(self.n_keys)]
        code = np.zeros(n, np.int64)
        for col, k in zip(cols, self.per_key):
            code = code * k + self._clip(col, k, n)
        return (code * self.n_groups + g).astype(np.int32)

    def spread(self, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sketch cells of row codes: (cells, rows), every row once per key (rows index
        into ``code``), key by key."""
        code = np.asarray(code)
        if self.n_keys == 1:
            return code.astype(np.int32), np.arange(code.size)
        rows = np.tile(np.arange(code.size), self.n_keys)
        if self.n_codes <= 1 << 16:  # one gather from a small table
            return self._table[:, code].ravel(), rows
        return self._arith(code.astype(np.int64)).ravel(), rows

    def _arith(self, code: np.ndarray) -> np.ndarray:
        """int32 [K, n]: the cell of each row code in each key's block."""
        g = code % self.n_groups
        rest = code // self.n_groups
        out = np.empty((self.n_keys, code.size), np.int32)
        for k in range(self.n_keys - 1, -1, -1):
            out[k] = self.offset(k) + (rest % self.per_key[k]) * self.n_groups + g
            rest = rest // self.per_key[k]
        return out

    @functools.cached_property
    def _table(self) -> np.ndarray:
        return self._arith(np.arange(self.n_codes, dtype=np.int64))

    def count(self, code: np.ndarray) -> np.ndarray:
        """Rows per sketch cell (int64 [n_cells]) of row codes."""
        return np.bincount(self.spread(code)[0], minlength=self.n_cells).astype(np.int64)

    def update(self, sketch: PerformanceSketch, code, label, pred, score) -> PerformanceSketch:
        """Joined rows (by row code) into ``sketch``, once per key."""
        cells, rows = self.spread(code)
        return sketch.update(cells, np.asarray(label)[rows], np.asarray(pred)[rows],
                             np.asarray(score)[rows])

    @staticmethod
    def _clip(code, k, n) -> np.ndarray:
        if code is None:
            return np.full(n, k - 1, np.int64)
        c = np.asarray(code, np.int64)
        return np.where((c >= 0) & (c < k - 1), c, k - 1)

    def new_sketch(self) -> PerformanceSketch:
        return PerformanceSketch.empty(self.n_cells, self.n_bins, self.n_calibration_bins)
