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

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from kernels.pending import PendingStore
from kernels.performance import PerformanceSketch
from monitor.stage1.cells import Cells
from monitor.stage1.windows import NO_TIME, frame, unframe


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
    def revisions(self, prediction_watermark_ms: int = int(NO_TIME)
                  ) -> list[PerformancePartial]:
        """Expire, then a snapshot of every window that changed since its last one, oldest
        first; windows nothing can change any more are emitted as final and dropped.
        ``prediction_watermark_ms``: the partition's watermark as the windows' side knows it
        (moved on by the idle heartbeat), when it is past the join's own."""
        self.expire()
        out = []
        pwm = max(self.prediction_watermark_ms, int(prediction_watermark_ms))
        lwm = self.label_watermark_ms
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
