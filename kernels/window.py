"""The reference profile, and the sketch of one window (one per window and source partition).

:class:`ReferenceProfile` is built once from a reference sample: per numeric feature a grid of
``n_bins + 1`` quantiles (1000 bins by default), the score's grid, the category list of each
categorical (most frequent first, at most ``max_categories``), the sensitive groups, per
numeric feature its quality statistics (q0.001, q0.999, median, MAD) and an isolation forest
over the numeric rows (see
:mod:`kernels.quality`), and the reference's own sketches on those grids (its quality
counters against the default bounds included). Its id is a hash of its content.

:class:`WindowSketch` bundles the sketches a window needs: numeric features, score,
categoricals, per-group prediction / confusion counts, quality counters
(:class:`~kernels.quality.QualitySketch`). ``update(batch)`` takes a whole
:class:`~kernels.batch.ColumnBatch` (one numba call per family), ``merge(other)`` returns a new
sketch (exact: any order, the same bytes), and
``to_bytes`` / ``from_bytes`` round-trip exactly. Its size depends on the profile only, never
on the events seen.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = ReferenceProfile.build(numeric={"x": rng.normal(size=1000)},
...                            categorical={"c": np.array(["a", "b", "a", "a"] * 250, object)},
...                            n_bins=10)
>>> p.numeric_names, p.categories["c"], p.edges.shape
(['x'], ['a', 'b'], (1, 11))
>>> ReferenceProfile.from_bytes(p.to_bytes()).profile_id == p.profile_id
True
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

import numpy as np
import orjson

from kernels.batch import CAT_MISSING, CAT_UNSEEN, VALID, ColumnBatch
from kernels.categorical import CategoricalSketch, GroupSketch
from kernels.grid import Grid
from kernels.numeric import NumericSketch
from kernels.quality import (IsolationForest, QualityBounds, QualitySketch,
                             reference_quality_stats)
from kernels.serial import pack_arrays, unpack_arrays


def quantile_grid(values: np.ndarray, n_bins: int) -> np.ndarray:
    """``n_bins + 1`` quantiles (linear interpolation) of the finite values; zeros if none.

    >>> quantile_grid(np.array([3.0, np.nan, 1.0, 2.0, np.inf]), 2).tolist()
    [1.0, 2.0, 3.0]
    """
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.zeros(n_bins + 1)
    return np.quantile(v, np.linspace(0.0, 1.0, n_bins + 1))


FORMAT = 3  # head["format"] of the profiles this code writes and reads


class ReferenceProfile:
    """Grids, category lists, groups, quality statistics, the isolation forest and
    reference sketches of one reference sample.

    ``edges`` float64 [F, B+1] and ``score_edges`` [1, B+1] are the quantile grids; ``head``
    holds the names, categories, groups, settings (``head["quality"]``: outlier_z,
    range_margin, n_trees, sample_size, contamination, seed) and ``metadata`` (source hash,
    rows, created at, schema: whatever the caller passes, ``rows`` / ``created_at`` /
    ``schema`` filled in when absent); ``quality_stats`` float64 [F, 4] holds per numeric
    feature q0.001, q0.999, median and MAD of its finite reference values (NaN when none);
    ``forest`` the :class:`~kernels.quality.IsolationForest` (None without numeric features
    or with fewer than 2 reference rows); ``reference`` is the reference's own
    :class:`WindowSketch`.
    """

    def __init__(self, head: dict[str, Any], edges: np.ndarray, score_edges: np.ndarray,
                 reference: "WindowSketch | None" = None,
                 quality_stats: np.ndarray | None = None,
                 forest: IsolationForest | None = None) -> None:
        self.head = head
        self.edges = np.ascontiguousarray(edges, np.float64)
        self.score_edges = np.ascontiguousarray(score_edges, np.float64)
        self.grid = Grid.build(self.edges)
        self.score_grid = Grid.build(self.score_edges)
        n = len(head["numeric"])
        self.quality_stats = (np.full((n, 4), np.nan) if quality_stats is None else
                              np.ascontiguousarray(quality_stats, np.float64).reshape(n, 4))
        self.forest = forest
        self.reference = reference
        # reference-side arrays kernels.evaluate derives once (never serialized)
        self.evaluation_cache: Any = None
        self._default_bounds: QualityBounds | None = None

    numeric_names = property(lambda self: list(self.head["numeric"]))
    categorical_names = property(lambda self: list(self.head["categorical"]))
    categories = property(lambda self: {k: list(v) for k, v in self.head["categories"].items()})
    groups = property(lambda self: list(self.head["groups"]))
    metadata = property(lambda self: dict(self.head["metadata"]))
    has_score = property(lambda self: bool(self.head["has_score"]))
    n_bins = property(lambda self: int(self.head["n_bins"]))
    max_categories = property(lambda self: int(self.head["max_categories"]))
    top_k = property(lambda self: int(self.head["top_k"]))
    quality_settings = property(lambda self: dict(self.head["quality"]))

    @property
    def default_bounds(self) -> QualityBounds:
        """``QualityBounds.from_profile(self)`` (built once)."""
        if self._default_bounds is None:
            self._default_bounds = QualityBounds.from_profile(self)
        return self._default_bounds

    @property
    def profile_id(self) -> str:
        """A hash of the profile's bytes (32 hex digits)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()[:32]

    @classmethod
    def build(cls, numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray] | None
              = None, score: np.ndarray | None = None, prediction: np.ndarray | None = None,
              label: np.ndarray | None = None, group: np.ndarray | None = None,
              n_bins: int = 1000, top_k: int = 16, max_categories: int = 256,
              metadata: dict[str, Any] | None = None, *, outlier_z: float = 6.0,
              range_margin: float = 0.1, n_trees: int = 25, sample_size: int = 256,
              contamination: float = 0.001, seed: int = 0) -> "ReferenceProfile":
        """A profile from reference columns: raw floats for ``numeric`` and ``score``
        (NaN / inf ignored for the grids, counted in the sketches), strings for
        ``categorical`` and ``group`` (None = absent), 1 / 0 / -1 for ``prediction`` and
        ``label``. Categories: most frequent first (ties by name), at most
        ``max_categories``; groups sorted. The quality settings (see
        :class:`~kernels.quality.QualityBounds` and
        :class:`~kernels.quality.IsolationForest`) are stored in ``head["quality"]``; the
        forest is fitted on the numeric rows (NaN / inf -> the feature's median) with
        ``seed``.

        >>> p = ReferenceProfile.build({"x": np.arange(100.0)}, n_bins=4,
        ...                            metadata={"source_sha256": "ab"})
        >>> p.edges.tolist(), p.metadata["rows"], p.metadata["source_sha256"]
        ([[0.0, 24.75, 49.5, 74.25, 99.0]], 100, 'ab')
        """
        categorical = categorical or {}
        names = list(numeric)
        edges = np.array([quantile_grid(numeric[n], n_bins) for n in names]).reshape(
            len(names), n_bins + 1)
        se = quantile_grid(score if score is not None else np.zeros(0), n_bins)
        cats: dict[str, list[str]] = {}
        for n, v in categorical.items():
            s = np.asarray(v, object)
            s = s[np.array([isinstance(x, str) for x in s], bool)] if s.size else s
            u, c = np.unique(s.astype(str), return_counts=True) if s.size else (
                np.zeros(0, str), np.zeros(0, np.int64))
            order = np.lexsort((u, -c)) if len(u) else np.zeros(0, np.int64)
            cats[n] = [str(u[i]) for i in order][:max_categories]
        groups = sorted({str(x) for x in group if x is not None}) if group is not None else []
        batch_rows = _rows(numeric, categorical, score, prediction, label, group)
        meta = dict(metadata or {})
        meta.setdefault("rows", batch_rows)
        meta.setdefault("created_at", _dt.datetime.now(_dt.timezone.utc).replace(
            microsecond=0).isoformat())
        meta.setdefault("schema", {"numeric": names, "categorical": list(categorical),
                                   "score": score is not None,
                                   "prediction": prediction is not None,
                                   "label": label is not None, "group": group is not None})
        if not (outlier_z > 0 and range_margin >= 0):
            raise ValueError(f"outlier_z {outlier_z} must be > 0 and range_margin "
                             f"{range_margin} >= 0")
        quality = {"outlier_z": float(outlier_z), "range_margin": float(range_margin),
                   "n_trees": int(n_trees), "sample_size": int(sample_size),
                   "contamination": float(contamination), "seed": int(seed)}
        head = {"format": FORMAT, "numeric": names, "categorical": list(categorical),
                "categories": cats, "groups": groups, "n_bins": n_bins, "top_k": top_k,
                "max_categories": max_categories, "has_score": score is not None,
                "quality": quality, "metadata": meta}
        stats = reference_quality_stats([numeric[k] for k in names])
        forest = None
        prof = cls(head, edges, se.reshape(1, -1), quality_stats=stats)
        batch = reference_batch(prof, numeric, categorical, score, prediction, label, group)
        if names and batch.n_events >= 2:
            med = np.nan_to_num(stats[:, 2], nan=0.0)
            forest = IsolationForest.fit(batch.numeric.T, n_trees=n_trees,
                                         sample_size=sample_size,
                                         contamination=contamination, seed=seed, medians=med)
        prof.forest = forest
        prof.reference = WindowSketch.empty(prof).update(batch)
        return prof

    # bytes ---------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Header (sorted JSON), grids, the reference sketch, the quality statistics and
        the forest's arrays (see :mod:`kernels.serial`)."""
        ref = self.reference.to_bytes() if self.reference is not None else b""
        head = orjson.dumps(self.head, option=orjson.OPT_SORT_KEYS)
        forest = (self.forest.to_arrays() if self.forest is not None
                  else IsolationForest.absent_arrays())
        return pack_arrays([np.frombuffer(head, np.uint8), self.edges, self.score_edges,
                            np.frombuffer(ref, np.uint8), self.quality_stats, *forest])

    @classmethod
    def from_bytes(cls, b: bytes) -> "ReferenceProfile":
        """Inverse of :meth:`to_bytes`. Profiles of an older format are refused with a
        message saying to rebuild them."""
        arrays = unpack_arrays(b)
        head = orjson.loads(arrays[0].tobytes())
        if head.get("format") != FORMAT or len(arrays) != 10:
            raise ValueError(f"reference profile format {head.get('format')}, this version "
                             f"reads format {FORMAT}: rebuild it (`streamdrift profile build`)")
        _, edges, se, ref, stats, *forest = arrays
        prof = cls(head, edges, se, quality_stats=stats,
                   forest=IsolationForest.from_arrays(forest))
        prof.reference = WindowSketch.from_bytes(ref.tobytes(), prof) if ref.size else None
        return prof

def _rows(numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray],
           score: np.ndarray | None, prediction: np.ndarray | None, label: np.ndarray | None,
           group: np.ndarray | None) -> int:
    for cols in (numeric.values(), categorical.values(), [score, prediction, label, group]):
        for c in cols:
            if c is not None:
                return len(c)
    return 0


def reference_batch(prof: ReferenceProfile, numeric: dict[str, np.ndarray],
                      categorical: dict[str, np.ndarray], score: np.ndarray | None,
                      prediction: np.ndarray | None, label: np.ndarray | None,
                      group: np.ndarray | None) -> ColumnBatch:
    """Raw reference columns as a ColumnBatch in the profile's encodings."""
    names = prof.numeric_names
    given = [*numeric.values(), *categorical.values(),
             *(a for a in (score, prediction, label, group) if a is not None)]
    n = len(given[0]) if given else 0
    num = np.array([np.asarray(numeric[k], np.float64) for k in names]).reshape(len(names), n)
    cats = prof.categories
    codes = np.full((len(categorical), n), CAT_MISSING, np.int32)
    for i, (k, v) in enumerate(categorical.items()):
        s = np.asarray(v, object).astype(str)
        lookup = {c: j for j, c in enumerate(cats[k])}
        codes[i] = np.array([lookup.get(x, CAT_UNSEEN) for x in s], np.int32)
    gl = {g: j for j, g in enumerate(prof.groups)}
    grp = (np.array([gl.get(str(x), -1) for x in group], np.int32) if group is not None
           else np.full(n, -1, np.int32))
    return ColumnBatch(
        numeric=num, numeric_state=np.full(num.shape, VALID, np.int8), categorical=codes,
        unseen_hash=np.zeros(codes.shape, np.uint64),
        score=np.asarray(score, np.float64) if score is not None else np.full(n, np.nan),
        prediction=np.asarray(prediction, np.int8) if prediction is not None
        else np.full(n, -1, np.int8),
        label=np.asarray(label, np.int8) if label is not None else np.full(n, -1, np.int8),
        group=grp, event_time_ms=np.zeros(n, np.int64), offset=np.arange(n, dtype=np.int64))


class WindowSketch:
    """The sketches of one window (and source partition): numeric features, score,
    categoricals, per-group prediction / confusion counts, quality counters, and the
    number of events.

    Its size depends on the profile only. All state is integer (or min / max), so it is a
    function of the multiset of events absorbed: any split into batches, any merge order,
    the same bytes. The quality bounds it counts against are not part of its bytes: every
    worker must build its sketches (``empty`` / ``from_bytes``) with the same bounds.
    """

    def __init__(self, numeric: NumericSketch, score: NumericSketch,
                 categorical: CategoricalSketch, groups: GroupSketch, n_events: int = 0,
                 profile: ReferenceProfile | None = None,
                 quality: QualitySketch | None = None) -> None:
        self.numeric = numeric
        self.score = score
        self.categorical = categorical
        self.groups = groups
        self.n_events = n_events
        self.profile = profile
        if quality is None:
            if profile is None:
                raise ValueError("WindowSketch needs a profile or a quality sketch")
            quality = QualitySketch.empty(len(profile.numeric_names), profile.default_bounds,
                                          profile.forest)
        self.quality = quality

    @classmethod
    def empty(cls, profile: ReferenceProfile, bounds: QualityBounds | None = None,
              quality: bool = True) -> "WindowSketch":
        """A sketch that has seen nothing (the identity of :meth:`merge`), counting quality
        against ``bounds`` (None: ``QualityBounds.from_profile(profile)``); with
        ``quality=False`` the quality counters stay zero (a drift-only monitor)."""
        if bounds is None:
            bounds = profile.default_bounds
        elif bounds.names != tuple(profile.numeric_names):
            raise ValueError(f"quality bounds for {list(bounds.names)}, the profile's numeric "
                             f"features are {profile.numeric_names}")
        return cls(NumericSketch.empty(profile.grid), NumericSketch.empty(profile.score_grid),
                   CategoricalSketch.empty(len(profile.categorical_names),
                                           max([len(c) for c in profile.categories.values()],
                                               default=0), profile.top_k),
                   GroupSketch.empty(len(profile.groups)), 0, profile,
                   QualitySketch.empty(len(profile.numeric_names), bounds, profile.forest,
                                       quality))

    def update(self, b: ColumnBatch) -> "WindowSketch":
        """Absorb a whole batch (one kernel call per family, quality included); returns
        self. A score of NaN counts as missing (the batch encoding), ±inf as inf. A batch
        whose feature counts differ from the profile's raises ValueError."""
        n = b.n_events
        if b.numeric.shape[0] != self.numeric.counts.shape[0] or \
                b.categorical.shape[0] != self.categorical.missing.shape[0]:
            raise ValueError(f"batch of {b.numeric.shape[0]} numeric / "
                             f"{b.categorical.shape[0]} categorical features, the profile has "
                             f"{self.numeric.counts.shape[0]} / "
                             f"{self.categorical.missing.shape[0]}")
        if n == 0:
            return self
        self.numeric.update(b.numeric, b.numeric_state)
        score = np.ascontiguousarray(b.score, np.float64).reshape(1, n)
        self.score.update(score, np.isnan(score).view(np.int8))
        self.categorical.update(b.categorical, b.unseen_hash)
        self.groups.update(b.group, b.prediction, b.label)
        self.quality.update(b)
        self.n_events += n
        return self

    def merge(self, other: "WindowSketch") -> "WindowSketch":
        """A new sketch holding both; exact, so the order does not matter."""
        return WindowSketch(self.numeric.merge(other.numeric), self.score.merge(other.score),
                            self.categorical.merge(other.categorical),
                            self.groups.merge(other.groups), self.n_events + other.n_events,
                            self.profile or other.profile, self.quality.merge(other.quality))

    def quality_counts(self) -> dict[str, dict[str, int]]:
        """Per field: missing / null / type_error (+ nan, inf or unseen) counts."""
        out: dict[str, dict[str, int]] = {}
        p = self.profile
        num = self.numeric
        for i, name in enumerate(p.numeric_names if p else []):
            out[name] = {"missing": int(num.missing[i]), "null": int(num.null[i]),
                         "type_error": int(num.type_error[i]), "nan": int(num.nan[i]),
                         "inf": int(num.inf[i])}
        cat = self.categorical
        for i, name in enumerate(p.categorical_names if p else []):
            out[name] = {"missing": int(cat.missing[i]), "null": int(cat.null[i]),
                         "type_error": int(cat.type_error[i]), "unseen": int(cat.unseen[i])}
        return out

    def quality_summary(self) -> dict[str, Any]:
        """The quality counters as plain ints: per numeric feature values out of range
        (below + above, and each side) and robust outliers; rows scored by the forest and
        row outliers; event-time lag (events with both times, stale events, Σ and max lag
        in ms). Bad values are in :meth:`quality_counts`, never here."""
        q = self.quality
        names = list(q.bounds.names)
        rc = q.range_counts.tolist()
        d = q.delay.tolist()
        return {"out_of_range": {n: rc[i][0] + rc[i][1] for i, n in enumerate(names)},
                "out_of_range_below": {n: rc[i][0] for i, n in enumerate(names)},
                "out_of_range_above": {n: rc[i][1] for i, n in enumerate(names)},
                "outliers": dict(zip(names, q.outliers.tolist())),
                "rows_scored": int(q.rows[0]), "row_outliers": int(q.rows[1]),
                "delay": {"events": d[0], "stale": d[1], "sum_ms": d[2], "max_ms": d[3]}}

    def to_bytes(self) -> bytes:
        """The state arrays (not the profile, not the quality bounds): see
        :mod:`kernels.serial`."""
        return pack_arrays([np.array([self.n_events], np.int64), *self.numeric.state_arrays(),
                            *self.score.state_arrays(), *self.categorical.state_arrays(),
                            self.groups.counts, *self.quality.state_arrays()])

    @classmethod
    def from_bytes(cls, b: bytes, profile: ReferenceProfile,
                   bounds: QualityBounds | None = None, quality: bool = True
                   ) -> "WindowSketch":
        """Inverse of :meth:`to_bytes`, on ``profile``'s grids (shapes are checked); later
        updates count quality against ``bounds`` (None: the profile's default bounds)."""
        a = unpack_arrays(b)
        ref = cls.empty(profile, bounds, quality)
        mine = [np.zeros(1, np.int64), *ref.numeric.state_arrays(), *ref.score.state_arrays(),
                *ref.categorical.state_arrays(), ref.groups.counts,
                *ref.quality.state_arrays()]
        if len(a) != len(mine) or any(x.shape != y.shape or x.dtype != y.dtype
                                      for x, y in zip(a, mine)):
            raise ValueError("sketch bytes do not fit this profile (other profile or format)")
        return cls(NumericSketch(profile.grid, *a[1:6]),
                   NumericSketch(profile.score_grid, *a[6:11]),
                   CategoricalSketch(*a[11:15]), GroupSketch(a[15]), int(a[0][0]), profile,
                   QualitySketch(ref.quality.bounds, profile.forest, a[16], a[17], a[18], a[19],
                                 quality))
