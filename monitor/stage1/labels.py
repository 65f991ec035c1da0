"""Stage 1's label join for one partition: predictions wait for their delayed labels, and each
window of *prediction* time keeps the performance of the rows joined so far.

The label topic is partitioned like the prediction topic (both keyed by event id), so
partition p of the labels meets partition p of the predictions, and one owner holds both.
A :class:`PartitionLabels` absorbs the two streams in offset order, each with its own next
offset (a replayed message below it is skipped: a restart counts no label twice), through one
:class:`kernels.pending.PendingStore` (a restart loses no waiting prediction: the store is
part of :meth:`to_bytes`):

- a prediction is counted in its window (per cell: slice x group, see :class:`Cells`) and
  waits; a label joins its prediction whichever came first; the joined row goes into the
  :class:`~kernels.performance.PerformanceSketch` of the prediction's window;
- the prediction watermark is the largest prediction time minus the lateness, the label
  watermark the same over label times; :meth:`expire` counts out predictions whose label can
  no longer come (time + max delay below the label watermark) and labels whose prediction
  can no longer come (orphans);
- a window that changed since it was last emitted is emitted again by :meth:`revisions` as a
  :class:`PerformancePartial` — a full snapshot with a revision number, so stage 2 keeps the
  latest per (window, partition) and a resent one replaces itself; once nothing can change
  it any more (its predictions are all closed and every one joined or expired) it is emitted
  a last time with ``final=True`` and dropped.

A prediction whose window was already dropped is counted in ``late_predictions`` of the
partition, never joined silently into nothing.

>>> import numpy as np
>>> p = PartitionLabels(0, window_ms=1000, lateness_ms=0, max_delay_ms=5000, cells=Cells())
>>> p.absorb_predictions(np.array([0, 1]), np.array([100, 200]), np.array([11, 12], np.uint64),
...                      np.array([0.9, 0.1]), np.array([1, 0], np.int8))
>>> p.absorb_labels(np.array([0]), np.array([900]), np.array([12], np.uint64),
...                 np.array([1], np.int8))
>>> [(r.window_start_ms, r.revision, int(r.predictions.sum()), r.result()["labelled"])
...  for r in p.revisions()]
[(0, 1, 2, 1)]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from kernels.pending import PendingStore
from kernels.performance import PerformanceSketch
from monitor.stage1.windows import NO_TIME, frame, unframe


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


@dataclass
class PerformancePartial:
    """One partition's performance of one window of prediction time, as of ``revision``."""

    partition: int
    window_start_ms: int
    window_end_ms: int
    revision: int
    final: bool
    sketch: PerformanceSketch
    predictions: np.ndarray  # int64 [cells]: predictions of the window
    expired: np.ndarray  # int64 [cells]: of them, expired without a label
    counts: dict[str, int] = field(default_factory=dict)  # the partition's store counters

    def result(self, cells=None) -> dict[str, Any]:
        return self.sketch.result(cells)

    def to_bytes(self) -> bytes:
        head = {"partition": self.partition, "start": self.window_start_ms,
                "end": self.window_end_ms, "revision": self.revision, "final": self.final,
                "predictions": self.predictions.tolist(), "expired": self.expired.tolist(),
                "counts": self.counts}
        return frame(orjson.dumps(head), [self.sketch.to_bytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> "PerformancePartial":
        head, (sk,) = unframe(data)
        h = orjson.loads(head)
        return cls(h["partition"], h["start"], h["end"], h["revision"], h["final"],
                   PerformanceSketch.from_bytes(sk), np.array(h["predictions"], np.int64),
                   np.array(h["expired"], np.int64), h["counts"])


@dataclass
class _Window:
    sketch: PerformanceSketch
    predictions: np.ndarray
    expired: np.ndarray
    revision: int = 0
    dirty: bool = True


class PartitionLabels:
    """See the module docstring. Tumbling windows of ``window_ms`` aligned to the epoch."""

    def __init__(self, partition: int, window_ms: int, lateness_ms: int, max_delay_ms: int,
                 cells: Cells, max_pending: int = 1 << 22) -> None:
        self.partition = partition
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self.max_delay_ms = max_delay_ms
        self.cells = cells
        self.store = PendingStore(max_delay_ms, max_entries=max_pending)
        self.windows: dict[int, _Window] = {}
        self.next_prediction_offset = 0
        self.next_label_offset = 0
        self.max_prediction_ms = int(NO_TIME)
        self.max_label_ms = int(NO_TIME)
        self.retired_before_ms = int(NO_TIME)  # windows starting before this are gone
        self.late_predictions = 0

    # -- absorbing -------------------------------------------------------------------------
    def _window(self, start: int) -> _Window:
        w = self.windows.get(start)
        if w is None:
            n = self.cells.n_cells
            w = self.windows[start] = _Window(self.cells.new_sketch(), np.zeros(n, np.int64),
                                              np.zeros(n, np.int64))
        return w

    def _by_window(self, times: np.ndarray):
        """(window start, row index) groups of ``times``, with numpy."""
        starts = times - np.mod(times, self.window_ms)
        order = np.argsort(starts, kind="stable")
        uniq, first = np.unique(starts[order], return_index=True)
        bounds = list(first[1:]) + [order.size]
        for s, lo, hi in zip(uniq.tolist(), first.tolist(), bounds):
            yield s, order[lo:hi]

    def _join(self, j: dict[str, np.ndarray]) -> None:
        for s, idx in self._by_window(j["time"]):
            w = self._window(s)
            self.cells.update(w.sketch, j["cell"][idx], j["label"][idx], j["pred"][idx],
                              j["score"][idx])
            w.dirty = True

    def absorb_predictions(self, offsets, event_ms, id_hash, score, prediction,
                           slice_code=None, group_code=None) -> None:
        """A batch of the prediction partition (decoded columns, offset order)."""
        offsets = np.asarray(offsets, np.int64)
        keep = np.flatnonzero(offsets >= self.next_prediction_offset)
        if keep.size == 0:
            return
        t = np.asarray(event_ms, np.int64)[keep]
        n = keep.size
        cell = self.cells.of(None if slice_code is None else np.asarray(slice_code)[keep],
                             None if group_code is None else np.asarray(group_code)[keep], n)
        starts = t - np.mod(t, self.window_ms)
        late = starts < self.retired_before_ms
        self.late_predictions += int(late.sum())
        ok = np.flatnonzero(~late)
        for s, idx in self._by_window(t[ok]):
            w = self._window(s)
            w.predictions += self.cells.count(cell[ok[idx]])
            w.dirty = True
        sel = keep[ok]
        self._join(self.store.add_predictions(
            np.asarray(id_hash, np.uint64)[sel], t[ok], np.asarray(score, np.float64)[sel],
            np.asarray(prediction, np.int8)[sel], cell[ok]))
        self.max_prediction_ms = max(self.max_prediction_ms, int(t.max()))
        self.next_prediction_offset = int(offsets.max()) + 1

    def absorb_labels(self, offsets, event_ms, id_hash, label) -> None:
        """A batch of the label partition (offset order)."""
        offsets = np.asarray(offsets, np.int64)
        keep = np.flatnonzero(offsets >= self.next_label_offset)
        if keep.size == 0:
            return
        t = np.asarray(event_ms, np.int64)[keep]
        self._join(self.store.add_labels(np.asarray(id_hash, np.uint64)[keep], t,
                                         np.asarray(label, np.int8)[keep]))
        self.max_label_ms = max(self.max_label_ms, int(t.max()))
        self.next_label_offset = int(offsets.max()) + 1

    @property
    def prediction_watermark_ms(self) -> int:
        m = self.max_prediction_ms
        return m if m == NO_TIME else m - self.lateness_ms

    @property
    def label_watermark_ms(self) -> int:
        m = self.max_label_ms
        return m if m == NO_TIME else m - self.lateness_ms

    def expire(self) -> None:
        """Count out what can no longer join (see the module docstring)."""
        if self.label_watermark_ms == NO_TIME and self.prediction_watermark_ms == NO_TIME:
            return
        e = self.store.expire(self.label_watermark_ms, self.prediction_watermark_ms)
        for s, idx in self._by_window(e["time"]):
            w = self._window(s)
            w.expired += self.cells.count(e["cell"][idx])
            w.dirty = True

    # -- emitting --------------------------------------------------------------------------
    def revisions(self) -> list[PerformancePartial]:
        """Expire, then a snapshot of every window that changed since its last one, oldest
        first; windows nothing can change any more are emitted as final and dropped."""
        self.expire()
        out = []
        pwm, lwm = self.prediction_watermark_ms, self.label_watermark_ms
        for s in sorted(self.windows):
            w = self.windows[s]
            end = s + self.window_ms
            closed = pwm != NO_TIME and end <= pwm
            done = closed and (lwm != NO_TIME and end + self.max_delay_ms < lwm
                               or int(w.predictions.sum()) == int(w.sketch.icnt[:, 0].sum()
                                                                  + w.expired.sum()))
            if not (w.dirty or done):
                continue
            w.revision += 1
            w.dirty = False
            out.append(PerformancePartial(self.partition, s, end, w.revision, done, w.sketch,
                                          w.predictions.copy(), w.expired.copy(),
                                          {**self.store.counts(),
                                           "late_predictions": self.late_predictions}))
            if done:
                del self.windows[s]
                self.retired_before_ms = max(self.retired_before_ms, end)
        return out

    # -- state -----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        c = self.cells
        head = {"partition": self.partition, "window_ms": self.window_ms,
                "lateness_ms": self.lateness_ms, "max_delay_ms": self.max_delay_ms,
                "cells": [c.n_slices, c.n_groups, c.n_bins, c.n_calibration_bins],
                "next_prediction_offset": self.next_prediction_offset,
                "next_label_offset": self.next_label_offset,
                "max_prediction_ms": self.max_prediction_ms, "max_label_ms": self.max_label_ms,
                "retired_before_ms": self.retired_before_ms,
                "late_predictions": self.late_predictions,
                "windows": [{"start": s, "revision": w.revision, "dirty": w.dirty,
                             "predictions": w.predictions.tolist(),
                             "expired": w.expired.tolist()}
                            for s, w in sorted(self.windows.items())]}
        blobs = [self.store.to_bytes()] + [w.sketch.to_bytes()
                                           for _, w in sorted(self.windows.items())]
        return frame(orjson.dumps(head), blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> "PartitionLabels":
        head, blobs = unframe(data)
        h = orjson.loads(head)
        self = cls(h["partition"], h["window_ms"], h["lateness_ms"], h["max_delay_ms"],
                   Cells(*h["cells"]))
        self.store = PendingStore.from_bytes(blobs[0])
        for k in ("next_prediction_offset", "next_label_offset", "max_prediction_ms",
                  "max_label_ms", "retired_before_ms", "late_predictions"):
            setattr(self, k, h[k])
        for w, b in zip(h["windows"], blobs[1:]):
            self.windows[w["start"]] = _Window(PerformanceSketch.from_bytes(b),
                                               np.array(w["predictions"], np.int64),
                                               np.array(w["expired"], np.int64),
                                               w["revision"], w["dirty"])
        return self
