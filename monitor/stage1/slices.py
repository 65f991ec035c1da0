"""Feature drift and data-quality counts per slice of a window (config ``slices:``).

A **slice** is one value of one slice key (a categorical feature): per key, the ``top_k``
categories the reference profile saw most often (its category list is most frequent first),
then ``<key>=other`` for everything else — other categories, unseen, missing, null or
wrong-typed keys. Every key slices the window on its own, so an event counts once per key
(memory grows with the *sum* of the keys' slices, never their product), and the slice list
is fixed by the profile: the state is bounded whatever the stream sends.

:class:`SliceSketch` holds, per slice (integer counts only, so merging is addition: exact,
any order, the same bytes):

- ``events`` int64 [S]: events of the slice;
- ``numeric`` int64 [S, F, B]: per numeric feature (and the prediction score, last, when the
  profile has one: absent = NaN, counted as missing), its finite valid values on ``B`` (``bins``)
  reference-quantile bins: coarse groups of the profile's fine grid (fine bin ``b`` of
  ``searchsorted(edges, x, "right")`` — 0 underflow, ``1..n_bins``, ``n_bins + 1`` overflow —
  goes to ``clip((b - 1) * B // n_bins, 0, B - 1)``, underflow with the first, overflow with
  the last), so the profile's own reference counts regroup onto the same bins exactly;
- ``categorical`` int64 [S, C, B]: per categorical feature, the counts of its ``B - 1`` most
  frequent reference categories, then the last column: every other value (later reference
  categories and unseen ones); missing, null and wrong-typed values are not values and stay out;
- ``quality`` int64 [S, F + C, 4]: per field (numeric, then categorical) missing, null, type
  error, and NaN / ±inf (numeric) or unseen (categorical).

:class:`SlicedWindowSketch` is a :class:`~kernels.window.WindowSketch` that carries a
:class:`SliceSketch` along: the same verbs, so stage 1's windows, the partials (its bytes are
the partial's sketch) and stage 2's merge take it unchanged. Updates are whole-batch numpy
(one numba pass, :func:`kernels.slice_counts.slice_update`), no per-event Python.

>>> import numpy as np
>>> from kernels.window import ReferenceProfile, reference_batch
>>> p = ReferenceProfile.build({"x": np.arange(100.0)},
...                            {"c": np.array(["a"] * 60 + ["b"] * 40, object)}, n_bins=10)
>>> lay = SliceLayout.build(p, keys=("c",), top_k=1, bins=2)
>>> lay.names, lay.n_slices
(['c=a', 'c=other'], 2)
>>> b = reference_batch(p, {"x": np.arange(100.0)}, {"c": np.array(["a"] * 60 + ["b"] * 40,
...                     object)}, None, None, None, None)
>>> s = SliceSketch.empty(lay).update(b)
>>> s.events.tolist(), s.numeric[:, 0].tolist()
([60, 40], [[50, 10], [0, 40]])
>>> SliceSketch.from_bytes(s.to_bytes(), lay).numeric.tolist() == s.numeric.tolist()
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from kernels.batch import ColumnBatch
from kernels.serial import pack_arrays, unpack_arrays
from kernels.slice_counts import slice_update
from kernels.window import WindowSketch
from monitor.stage1.windows import frame, unframe

log = logging.getLogger("streamdrift.slices")
QUALITY = ("missing", "null", "type_error", "nonfinite_or_unseen")
MAGIC = b"streamdrift-sliced-1"


@dataclass(frozen=True)
class SliceLayout:
    """Which slices exist and how values fall into bins (built once from the profile)."""

    keys: tuple[str, ...]
    key_rows: tuple[int, ...]      # each key's row in the batch's categorical block
    per_key: tuple[int, ...]       # slices per key (top categories + "other")
    names: list[str]               # "<key>=<value>", key after key
    numeric: tuple[str, ...]       # the numeric features, then "score" when the profile has one
    categorical: tuple[str, ...]
    edges: np.ndarray              # float64 [F, n_bins + 1], the profile's fine grids
    bins: int
    inner: np.ndarray              # float64 [F, bins - 1]: x is in bin #(inner <= x)

    @classmethod
    def build(cls, profile, keys: tuple[str, ...], top_k: int, bins: int) -> "SliceLayout":
        cats = profile.categories
        rows, per, names = [], [], []
        for k in keys:
            top = list(cats[k][:top_k])
            rows.append(profile.categorical_names.index(k))
            per.append(len(top) + 1)
            names += [f"{k}={v}" for v in top] + [f"{k}=other"]
        numeric = list(profile.numeric_names)
        edges = np.ascontiguousarray(profile.edges, np.float64)
        if profile.has_score:  # the score is one more numeric row, on its own grid
            numeric.append("score")
            edges = np.vstack([edges, profile.score_edges])
        # fine bin b (searchsorted(edges, x, "right")) -> coarse (b - 1) * bins // n_bins,
        # i.e. coarse >= j iff x >= edges[ceil(j n_bins / bins)]: those are the inner edges
        fine_n = edges.shape[1] - 1
        at = [-(-j * fine_n // bins) for j in range(1, bins)]
        inner = np.ascontiguousarray(edges[:, at]).reshape(edges.shape[0], bins - 1)
        return cls(tuple(keys), tuple(rows), tuple(per), names, tuple(numeric),
                   tuple(profile.categorical_names), edges, int(bins), inner)

    @property
    def n_slices(self) -> int:
        return sum(self.per_key)

    def offset(self, key: int) -> int:
        return sum(self.per_key[:key])

    def key_of(self, s: int) -> int:
        """The key (index) slice ``s`` belongs to."""
        return int(np.searchsorted(np.cumsum(self.per_key), s, "right"))

    def slice_of(self, categorical: np.ndarray) -> np.ndarray:
        """int64 [K, n]: each event's slice (global numbering) under every key."""
        n = categorical.shape[1]
        out = np.empty((len(self.keys), n), np.int64)
        for k, (row, m) in enumerate(zip(self.key_rows, self.per_key)):
            c = categorical[row].astype(np.int64)
            out[k] = self.offset(k) + np.where((c >= 0) & (c < m - 1), c, m - 1)
        return out

    def regroup_fine(self, counts: np.ndarray) -> np.ndarray:
        """Fine-grid counts [F, n_bins + 2] (under, bins, over) -> [F, bins]."""
        fine_n = self.edges.shape[1] - 1
        target = np.clip((np.arange(fine_n + 2) - 1) * self.bins // max(fine_n, 1), 0,
                         self.bins - 1)
        out = np.zeros((counts.shape[0], self.bins), np.int64)
        for b in range(self.bins):
            out[:, b] = counts[:, target == b].sum(axis=1)
        return out


class SliceSketch:
    """Per-slice counts of one window (see the module docstring); ``update`` / ``merge`` /
    ``to_bytes`` / ``from_bytes``."""

    def __init__(self, layout: SliceLayout, events: np.ndarray, numeric: np.ndarray,
                 categorical: np.ndarray, quality: np.ndarray) -> None:
        self.layout = layout
        self.events = events
        self.numeric = numeric
        self.categorical = categorical
        self.quality = quality

    @classmethod
    def empty(cls, layout: SliceLayout) -> "SliceSketch":
        s, f, c, b = layout.n_slices, len(layout.numeric), len(layout.categorical), layout.bins
        return cls(layout, np.zeros(s, np.int64), np.zeros((s, f, b), np.int64),
                   np.zeros((s, c, b), np.int64), np.zeros((s, f + c, len(QUALITY)), np.int64))

    def update(self, b: ColumnBatch) -> "SliceSketch":
        """Absorb a whole batch; returns self."""
        n = b.n_events
        if n == 0:
            return self
        lay = self.layout
        slice_update(lay.slice_of(b.categorical), b.numeric, b.numeric_state,
                     lay.inner, np.ascontiguousarray(b.score, np.float64), b.categorical,
                     self.events, self.numeric, self.categorical, self.quality)
        return self

    def merge(self, other: "SliceSketch") -> "SliceSketch":
        return SliceSketch(self.layout, self.events + other.events,
                           self.numeric + other.numeric, self.categorical + other.categorical,
                           self.quality + other.quality)

    def to_bytes(self) -> bytes:
        return pack_arrays([self.events, self.numeric, self.categorical, self.quality])

    @classmethod
    def from_bytes(cls, b: bytes, layout: SliceLayout) -> "SliceSketch":
        a = unpack_arrays(b)
        ref = cls.empty(layout)
        mine = [ref.events, ref.numeric, ref.categorical, ref.quality]
        if len(a) != 4 or any(x.shape != y.shape for x, y in zip(a, mine)):
            raise ValueError("slice sketch bytes do not fit these slices (other profile or "
                             "slices config)")
        return cls(layout, *a)


class SlicedWindowSketch(WindowSketch):
    """A window sketch with its per-slice counts (``.slices``); same verbs, bytes
    ``frame(MAGIC, [window sketch bytes, slice sketch bytes])``."""

    def __init__(self, base: WindowSketch, slices: SliceSketch) -> None:  # noqa: D107
        self.__dict__.update(base.__dict__)
        self.slices = slices

    @classmethod
    def empty_of(cls, base: WindowSketch, layout: SliceLayout) -> "SlicedWindowSketch":
        return cls(base, SliceSketch.empty(layout))

    def update(self, b: ColumnBatch) -> "SlicedWindowSketch":
        WindowSketch.update(self, b)
        self.slices.update(b)
        return self

    def merge(self, other: WindowSketch) -> "SlicedWindowSketch":
        base = WindowSketch.merge(self, other)
        theirs = getattr(other, "slices", None)
        return SlicedWindowSketch(base, self.slices.merge(theirs) if theirs is not None
                                  else self.slices.merge(SliceSketch.empty(self.slices.layout)))

    def to_bytes(self) -> bytes:
        return frame(MAGIC, [WindowSketch.to_bytes(self), self.slices.to_bytes()])

    @classmethod
    def load(cls, data: bytes, load_base, layout: SliceLayout) -> "SlicedWindowSketch":
        """Inverse of :meth:`to_bytes` (``load_base``: the window sketch's loader). Bytes
        without slices, or with slices of another layout (the config gained ``slices:`` or
        changed it across a restart), load with empty slice counts: that window's slices
        count from the restart on (their rates and distributions stay consistent, on fewer
        events), never a crash."""
        if not is_sliced(data):
            return cls(load_base(data), SliceSketch.empty(layout))
        _, (base, slices) = unframe(data)
        try:
            sl = SliceSketch.from_bytes(slices, layout)
        except ValueError:
            log.warning("a stored window's slice counts do not fit the slices config: that "
                        "window counts its slices from now on")
            sl = SliceSketch.empty(layout)
        return cls(load_base(base), sl)


def is_sliced(data: bytes) -> bool:
    """Whether sketch bytes carry slices (:meth:`SlicedWindowSketch.to_bytes`)."""
    return data[8:8 + len(MAGIC)] == MAGIC


def without_slices(load_base):
    """A loader of plain window sketches that also takes sliced bytes (the config dropped
    ``slices:`` across a restart): their slice counts are dropped."""
    def load(data: bytes):
        return load_base(unframe(data)[1][0] if is_sliced(data) else data)
    return load


def sliced_parts(new_sketch, load_sketch, layout: SliceLayout) -> dict:
    """Stage 1 / 2's sketch factories with slices carried along."""
    return {"new_sketch": lambda: SlicedWindowSketch.empty_of(new_sketch(), layout),
            "load_sketch": lambda b: SlicedWindowSketch.load(b, load_sketch, layout)}
