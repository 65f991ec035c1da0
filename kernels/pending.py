"""Predictions waiting for their labels (and labels that came first): a bounded hash table
keyed by the 64-bit hash of the event id, in a few numpy arrays.

Each slot holds one waiting entry: a *prediction* (its event time, score, predicted class and
cell — see :mod:`kernels.performance`) or a *label* that arrived before its prediction (its
event time and value). Open addressing with linear probing over a power-of-two capacity and
backward-shift deletion (no tombstones, so lookups never slow down with churn). Batched
verbs, one numba call each:

- ``add_predictions(keys, times, scores, preds, cells)`` and ``add_labels(keys, times,
  labels)`` join what meets its other half (the joined rows are returned, in input order)
  and store the rest;
- ``expire(label_watermark, prediction_watermark)``: a prediction whose time + ``max_delay``
  is below the label stream's watermark will get no label any more (*expired*); a label
  whose time is below the prediction stream's watermark will meet no prediction any more
  (*orphan*: a prediction never comes after its label). Both are counted and returned (the
  expired predictions' times and cells, so their windows can count them), never dropped
  silently.

Counters (``counters``, int64): predictions stored, labels stored, joined, expired
predictions, orphan labels, duplicate predictions (the first one waits, later ones with the
same id are counted and ignored), duplicate labels (the same), predictions and labels refused
because the store is full (``max_entries``), keys of 0 ("no id").

Memory: 30 bytes per slot (key 8, time 8, score 8, cell 4, kind 1, class / label 1); the
table doubles when more than 0.7 of it is used, so ``n`` waiting entries take between 30 n /
0.7 and 60 n / 0.7 bytes: 43-86 MB per million (``nbytes``; the bench measures it). The
bytes of :meth:`to_bytes` hold only the waiting entries (30 bytes each, sorted by key, so
they depend on *what* waits, never on the order it came in), and ``from_bytes`` rebuilds the
table.

>>> import numpy as np
>>> s = PendingStore(max_delay_ms=1000)
>>> j = s.add_predictions(np.array([7, 8], np.uint64), np.array([100, 200]),
...                       np.array([0.9, 0.2]), np.array([1, 0], np.int8), np.zeros(2, np.int32))
>>> len(j["time"]), len(s)
(0, 2)
>>> j = s.add_labels(np.array([8, 9], np.uint64), np.array([900, 950]), np.array([1, 0], np.int8))
>>> j["time"].tolist(), j["label"].tolist(), len(s)  # 8 joined, 9 waits for its prediction
([200], [1], 2)
>>> e = s.expire(label_watermark=1150, prediction_watermark=1000)
>>> e["time"].tolist(), s.expired, s.orphan_labels, len(s)
([100], 1, 1, 0)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from kernels.jit import Scalar, inline, kernel
from kernels.serial import pack_arrays, unpack_arrays

EMPTY, PREDICTION, LABEL = 0, 1, 2
COUNTERS = ("predictions", "labels", "joined", "expired", "orphan_labels",
            "duplicate_predictions", "duplicate_labels", "full_predictions", "full_labels",
            "no_id")
C = {name: i for i, name in enumerate(COUNTERS)}
SLOT_BYTES = 30
LOAD = 0.7
MIN_CAPACITY = 1 << 10
#: the waiting entries: keys, times, scores, cells, kinds, values
Entries = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@inline
def _slot(h: Scalar, mask: Scalar) -> Scalar:
    return np.int64((h * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(20)) & mask


@kernel
def _find(keys: np.ndarray, h: Scalar, mask: Scalar) -> Scalar:
    """The slot of key ``h``, or -1 - (the empty slot where it would go)."""
    i = _slot(h, mask)
    while True:
        k = keys[i]
        if k == h:
            return i
        if k == 0:
            return -1 - i
        i = (i + 1) & mask


@kernel
def _delete(keys: np.ndarray, time: np.ndarray, score: np.ndarray, cell: np.ndarray,
            kind: np.ndarray, value: np.ndarray, i: Scalar, mask: Scalar) -> None:
    """Empty slot i and shift later entries of its probe run back (Knuth's algorithm R)."""
    j = i
    while True:
        j = (j + 1) & mask
        if keys[j] == 0:
            break
        home = _slot(keys[j], mask)
        # move j into the hole at i unless its home lies cyclically in (i, j]
        if (i <= j and (home <= i or home > j)) or (i > j and (home <= i and home > j)):
            keys[i], time[i], score[i] = keys[j], time[j], score[j]
            cell[i], kind[i], value[i] = cell[j], kind[j], value[j]
            i = j
    keys[i] = 0
    kind[i] = EMPTY


@kernel
def _add(is_label: Scalar, hs: np.ndarray, ts: np.ndarray, ss: np.ndarray, vs: np.ndarray,
         cs: np.ndarray, keys: np.ndarray, time: np.ndarray, score: np.ndarray, cell: np.ndarray,
         kind: np.ndarray, value: np.ndarray, counters: np.ndarray, limit: Scalar,
         out_idx: np.ndarray, out_time: np.ndarray, out_score: np.ndarray, out_pred: np.ndarray,
         out_cell: np.ndarray, out_label: np.ndarray) -> Scalar:
    """Join or store each row; joined rows go to out_* (prediction side's time / score /
    class / cell, the label); returns their number. Stops storing at ``limit`` entries."""
    mask = keys.shape[0] - 1
    n_out = 0
    size = counters[-1]
    for r in range(hs.shape[0]):
        h = hs[r]
        if h == 0:
            counters[9] += 1
            continue
        i = _find(keys, h, mask)
        want = PREDICTION if is_label else LABEL  # the other half
        if i >= 0 and kind[i] == want:
            out_idx[n_out] = r
            if is_label:
                out_time[n_out], out_score[n_out] = time[i], score[i]
                out_pred[n_out], out_cell[n_out], out_label[n_out] = value[i], cell[i], vs[r]
            else:
                out_time[n_out], out_score[n_out] = ts[r], ss[r]
                out_pred[n_out], out_cell[n_out], out_label[n_out] = vs[r], cs[r], value[i]
            n_out += 1
            counters[2] += 1
            _delete(keys, time, score, cell, kind, value, i, mask)
            size -= 1
        elif i >= 0:
            counters[6 if is_label else 5] += 1
        elif size >= limit:
            counters[8 if is_label else 7] += 1
        else:
            i = -1 - i
            keys[i], time[i], value[i] = h, ts[r], vs[r]
            score[i] = np.nan if is_label else ss[r]
            cell[i] = 0 if is_label else cs[r]
            kind[i] = LABEL if is_label else PREDICTION
            counters[1 if is_label else 0] += 1
            size += 1
    counters[-1] = size
    return n_out


@kernel
def _expire(keys: np.ndarray, time: np.ndarray, score: np.ndarray, cell: np.ndarray,
            kind: np.ndarray, value: np.ndarray, counters: np.ndarray, label_wm: Scalar,
            pred_wm: Scalar, max_delay: Scalar, out_time: np.ndarray, out_cell: np.ndarray) -> Scalar:
    """Remove expired predictions (time + max_delay < label_wm; their time / cell go to
    out_*) and orphan labels (time < pred_wm); returns the number of expired predictions."""
    mask = keys.shape[0] - 1
    victims = np.empty(counters[-1], np.uint64)
    nv = 0
    n_out = 0
    for i in range(keys.shape[0]):
        k = kind[i]
        if k == PREDICTION and time[i] + max_delay < label_wm:
            out_time[n_out], out_cell[n_out] = time[i], cell[i]
            n_out += 1
            counters[3] += 1
            victims[nv] = keys[i]
            nv += 1
        elif k == LABEL and time[i] < pred_wm:
            counters[4] += 1
            victims[nv] = keys[i]
            nv += 1
    for v in range(nv):  # deleting shifts entries, so delete by key after the scan
        i = _find(keys, victims[v], mask)
        _delete(keys, time, score, cell, kind, value, i, mask)
    counters[-1] -= nv
    return n_out


@kernel
def _reinsert(hs: np.ndarray, ts: np.ndarray, ss: np.ndarray, cs: np.ndarray, ks: np.ndarray,
              vs: np.ndarray, keys: np.ndarray, time: np.ndarray, score: np.ndarray,
              cell: np.ndarray, kind: np.ndarray, value: np.ndarray) -> None:
    mask = keys.shape[0] - 1
    for r in range(hs.shape[0]):
        i = -1 - _find(keys, hs[r], mask)
        keys[i], time[i], score[i] = hs[r], ts[r], ss[r]
        cell[i], kind[i], value[i] = cs[r], ks[r], vs[r]


class PendingStore:
    """See the module docstring. ``max_delay_ms``: how long a prediction waits for its label
    (label-stream event time); ``max_entries``: the bound on waiting entries."""

    def __init__(self, max_delay_ms: int, max_entries: int = 1 << 22,
                 capacity: int = MIN_CAPACITY) -> None:
        if max_delay_ms < 0 or max_entries < 1 or capacity & (capacity - 1):
            raise ValueError("max_delay_ms >= 0, max_entries >= 1, capacity a power of two")
        self.max_delay_ms = int(max_delay_ms)
        self.max_entries = int(max_entries)
        self.counters = np.zeros(len(COUNTERS) + 1, np.int64)  # + the current size
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        self.keys = np.zeros(capacity, np.uint64)
        self.time = np.zeros(capacity, np.int64)
        self.score = np.zeros(capacity, np.float64)
        self.cell = np.zeros(capacity, np.int32)
        self.kind = np.zeros(capacity, np.int8)
        self.value = np.zeros(capacity, np.int8)

    def __len__(self) -> int:
        return int(self.counters[-1])

    def __getattr__(self, name: str) -> int:
        if name in C:
            return int(self.counters[C[name]])
        raise AttributeError(name)

    @property
    def capacity(self) -> int:
        return int(self.keys.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.keys, self.time, self.score, self.cell, self.kind,
                                      self.value))

    def _reserve(self, extra: int) -> None:
        need = min(len(self) + extra, self.max_entries)  # self.counters[-1] = the size
        cap = self.capacity
        while need > LOAD * cap:
            cap *= 2
        if cap != self.capacity:
            entries = self._entries()
            self._alloc(cap)
            _reinsert(*entries, self.keys, self.time, self.score, self.cell, self.kind,
                      self.value)

    def _entries(self) -> Entries:
        """The waiting entries, sorted by key: keys, times, scores, cells, kinds, values."""
        used = np.flatnonzero(self.keys)
        used = used[np.argsort(self.keys[used], kind="stable")]
        return (self.keys[used], self.time[used], self.score[used], self.cell[used],
                self.kind[used], self.value[used])

    def _add(self, is_label: bool, keys: np.ndarray, times: np.ndarray, scores: np.ndarray,
             values: np.ndarray, cells: np.ndarray) -> dict[str, np.ndarray]:
        n = keys.shape[0]
        self._reserve(n)
        out: dict[str, np.ndarray] = {"index": np.empty(n, np.int64), "time": np.empty(n, np.int64),
               "score": np.empty(n), "pred": np.empty(n, np.int8),
               "cell": np.empty(n, np.int32), "label": np.empty(n, np.int8)}
        m = _add(is_label, keys, times, scores, values, cells, self.keys, self.time,
                 self.score, self.cell, self.kind, self.value, self.counters, self.max_entries,
                 out["index"], out["time"], out["score"], out["pred"], out["cell"],
                 out["label"])
        return {k: v[:m] for k, v in out.items()}

    def add_predictions(self, keys: ArrayLike, times: ArrayLike, scores: ArrayLike,
                        preds: ArrayLike, cells: ArrayLike) -> dict[str, np.ndarray]:
        """Predictions (id hashes uint64, event times ms, scores (NaN: none), classes int8,
        cells int32). Returns the joined rows: ``index`` (of the input row), ``time`` /
        ``score`` / ``pred`` / ``cell`` of the prediction and its ``label``."""
        keys = np.ascontiguousarray(keys, np.uint64)
        n = keys.shape[0]
        return self._add(False, keys, np.ascontiguousarray(times, np.int64),
                         np.ascontiguousarray(scores, np.float64).reshape(n),
                         np.ascontiguousarray(preds, np.int8).reshape(n),
                         np.ascontiguousarray(cells, np.int32).reshape(n))

    def add_labels(self, keys: ArrayLike, times: ArrayLike,
                   labels: ArrayLike) -> dict[str, np.ndarray]:
        """Labels (id hashes, label event times ms, values int8); returns the joined rows as
        :meth:`add_predictions` does."""
        keys = np.ascontiguousarray(keys, np.uint64)
        n = keys.shape[0]
        return self._add(True, keys, np.ascontiguousarray(times, np.int64).reshape(n),
                         np.zeros(n), np.ascontiguousarray(labels, np.int8).reshape(n),
                         np.zeros(n, np.int32))

    def expire(self, label_watermark: int, prediction_watermark: int) -> dict[str, np.ndarray]:
        """Count out expired predictions and orphan labels (see the module docstring); returns
        the expired predictions' ``time`` and ``cell``."""
        n = len(self)
        t, c = np.empty(n, np.int64), np.empty(n, np.int32)
        m = _expire(self.keys, self.time, self.score, self.cell, self.kind, self.value,
                    self.counters, int(label_watermark), int(prediction_watermark),
                    self.max_delay_ms, t, c)
        return {"time": t[:m], "cell": c[:m]}

    def counts(self) -> dict[str, int]:
        """The counters as a plain record (and ``waiting``)."""
        return {**{k: int(self.counters[i]) for k, i in C.items()}, "waiting": len(self)}

    # bytes ---------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Settings, counters and the waiting entries sorted by key (see the module docstring).

        >>> s = PendingStore(10)
        >>> _ = s.add_labels(np.array([5], np.uint64), np.array([1]), np.array([1], np.int8))
        >>> PendingStore.from_bytes(s.to_bytes()).to_bytes() == s.to_bytes(), len(s)
        (True, 1)
        """
        head = np.array([self.max_delay_ms, self.max_entries], np.int64)
        return b"PND1" + pack_arrays([head, self.counters, *self._entries()])

    @classmethod
    def from_bytes(cls, b: bytes) -> "PendingStore":
        if b[:4] != b"PND1":
            raise ValueError("not a pending-label store (bad magic)")
        head, counters, hs, ts, ss, cs, ks, vs = unpack_arrays(b[4:])
        s = cls(int(head[0]), int(head[1]))
        s.counters = counters
        s._reserve(0)
        _reinsert(hs, ts, ss, cs, ks, vs, s.keys, s.time, s.score, s.cell, s.kind, s.value)
        return s
