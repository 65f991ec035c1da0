"""The reference profile, and the sketch of one window (one per window and source partition).

:class:`ReferenceProfile` is built once from a reference sample: per numeric feature a grid of
``n_bins + 1`` quantiles (1000 bins by default), the score's grid, the category list of each categorical (most frequent first, at most
``max_categories``), the sensitive groups, and the reference's own sketches on those grids.
Its id is a hash of its content.

:class:`WindowSketch` bundles the sketches a window needs: numeric features, score,
categoricals, per-group prediction / confusion counts. ``update(batch)`` takes a whole
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
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from kernels.batch import CAT_MISSING, CAT_UNSEEN, VALID, ColumnBatch
from kernels.categorical import CategoricalSketch, GroupSketch
from kernels.grid import Grid
from kernels.numeric import NumericSketch
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


class ReferenceProfile:
    """Grids, category lists, groups and reference sketches of one reference sample.

    ``edges`` float64 [F, B+1] and ``score_edges`` [1, B+1] are the quantile grids; ``head``
    holds the names, categories, groups, settings and ``metadata`` (source hash, rows,
    created at, schema: whatever the caller passes, ``rows`` / ``created_at`` / ``schema``
    filled in when absent); ``reference`` is the reference's own :class:`WindowSketch`.
    """

    def __init__(self, head: dict[str, Any], edges: np.ndarray, score_edges: np.ndarray,
                 reference: "WindowSketch | None" = None) -> None:
        self.head = head
        self.edges = np.ascontiguousarray(edges, np.float64)
        self.score_edges = np.ascontiguousarray(score_edges, np.float64)
        self.grid = Grid.build(self.edges)
        self.score_grid = Grid.build(self.score_edges)
        self.reference = reference
        # reference-side arrays kernels.evaluate derives once (never serialized)
        self.evaluation_cache: Any = None

    numeric_names = property(lambda self: list(self.head["numeric"]))
    categorical_names = property(lambda self: list(self.head["categorical"]))
    categories = property(lambda self: {k: list(v) for k, v in self.head["categories"].items()})
    groups = property(lambda self: list(self.head["groups"]))
    metadata = property(lambda self: dict(self.head["metadata"]))
    has_score = property(lambda self: bool(self.head["has_score"]))
    n_bins = property(lambda self: int(self.head["n_bins"]))
    max_categories = property(lambda self: int(self.head["max_categories"]))
    top_k = property(lambda self: int(self.head["top_k"]))

    @property
    def profile_id(self) -> str:
        """A hash of the profile's bytes (32 hex digits)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()[:32]

    @classmethod
    def build(cls, numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray] | None
              = None, score: np.ndarray | None = None, prediction: np.ndarray | None = None,
              label: np.ndarray | None = None, group: np.ndarray | None = None,
              n_bins: int = 1000, top_k: int = 16, max_categories: int = 256,
              metadata: dict | None = None) -> "ReferenceProfile":
        """A profile from reference columns: raw floats for ``numeric`` and ``score``
        (NaN / inf ignored for the grids, counted in the sketches), strings for
        ``categorical`` and ``group`` (None = absent), 1 / 0 / -1 for ``prediction`` and
        ``label``. Categories: most frequent first (ties by name), at most
        ``max_categories``; groups sorted.

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
        cats = {}
        for n, v in categorical.items():
            s = np.asarray(v, object)
            s = s[np.array([isinstance(x, str) for x in s], bool)] if s.size else s
            u, c = np.unique(s.astype(str), return_counts=True) if s.size else ([], [])
            order = np.lexsort((np.asarray(u), -np.asarray(c))) if len(u) else []
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
        head = {"format": 2, "numeric": names, "categorical": list(categorical),
                "categories": cats, "groups": groups, "n_bins": n_bins, "top_k": top_k,
                "max_categories": max_categories, "has_score": score is not None,
                "metadata": meta}
        prof = cls(head, edges, se.reshape(1, -1))
        prof.reference = WindowSketch.empty(prof).update(
            reference_batch(prof, numeric, categorical, score, prediction, label, group))
        return prof

    # bytes ---------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Header (sorted JSON), grids and the reference sketch (see :mod:`kernels.serial`)."""
        ref = self.reference.to_bytes() if self.reference is not None else b""
        head = orjson.dumps(self.head, option=orjson.OPT_SORT_KEYS)
        return pack_arrays([np.frombuffer(head, np.uint8), self.edges, self.score_edges,
                            np.frombuffer(ref, np.uint8)])

    @classmethod
    def from_bytes(cls, b: bytes) -> "ReferenceProfile":
        """Inverse of :meth:`to_bytes`."""
        head, edges, se, ref = unpack_arrays(b)
        prof = cls(orjson.loads(head.tobytes()), edges, se)
        prof.reference = WindowSketch.from_bytes(ref.tobytes(), prof) if ref.size else None
        return prof

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_bytes` to ``path``."""
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> "ReferenceProfile":
        """Read a profile written by :meth:`save`."""
        return cls.from_bytes(Path(path).read_bytes())


def _rows(numeric, categorical, score, prediction, label, group) -> int:
    for cols in (numeric.values(), categorical.values(), [score, prediction, label, group]):
        for c in cols:
            if c is not None:
                return len(c)
    return 0


def reference_batch(prof: ReferenceProfile, numeric, categorical, score, prediction, label,
                    group) -> ColumnBatch:
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
    categoricals, per-group prediction / confusion counts, and the number of events.

    Its size depends on the profile only. All state is integer (or min / max), so it is a
    function of the multiset of events absorbed: any split into batches, any merge order,
    the same bytes.
    """

    def __init__(self, numeric: NumericSketch, score: NumericSketch,
                 categorical: CategoricalSketch, groups: GroupSketch, n_events: int = 0,
                 profile: ReferenceProfile | None = None) -> None:
        self.numeric = numeric
        self.score = score
        self.categorical = categorical
        self.groups = groups
        self.n_events = n_events
        self.profile = profile

    @classmethod
    def empty(cls, profile: ReferenceProfile) -> "WindowSketch":
        """A sketch that has seen nothing (the identity of :meth:`merge`)."""
        return cls(NumericSketch.empty(profile.grid), NumericSketch.empty(profile.score_grid),
                   CategoricalSketch.empty(len(profile.categorical_names),
                                           max([len(c) for c in profile.categories.values()],
                                               default=0), profile.top_k),
                   GroupSketch.empty(len(profile.groups)), 0, profile)

    def update(self, b: ColumnBatch) -> "WindowSketch":
        """Absorb a whole batch (one kernel call per family); returns self. A score of NaN
        counts as missing (the batch encoding), ±inf as inf."""
        n = b.n_events
        if n == 0:
            return self
        self.numeric.update(b.numeric, b.numeric_state)
        score = np.ascontiguousarray(b.score, np.float64).reshape(1, n)
        self.score.update(score, np.isnan(score).view(np.int8))
        self.categorical.update(b.categorical, b.unseen_hash)
        self.groups.update(b.group, b.prediction, b.label)
        self.n_events += n
        return self

    def merge(self, other: "WindowSketch") -> "WindowSketch":
        """A new sketch holding both; exact, so the order does not matter."""
        return WindowSketch(self.numeric.merge(other.numeric), self.score.merge(other.score),
                            self.categorical.merge(other.categorical),
                            self.groups.merge(other.groups), self.n_events + other.n_events,
                            self.profile or other.profile)

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

    def to_bytes(self) -> bytes:
        """The state arrays (not the profile): see :mod:`kernels.serial`."""
        return pack_arrays([np.array([self.n_events], np.int64), *self.numeric.state_arrays(),
                            *self.score.state_arrays(), *self.categorical.state_arrays(),
                            self.groups.counts])

    @classmethod
    def from_bytes(cls, b: bytes, profile: ReferenceProfile) -> "WindowSketch":
        """Inverse of :meth:`to_bytes`, on ``profile``'s grids (shapes are checked)."""
        a = unpack_arrays(b)
        ref = cls.empty(profile)
        mine = [np.zeros(1, np.int64), *ref.numeric.state_arrays(), *ref.score.state_arrays(),
                *ref.categorical.state_arrays(), ref.groups.counts]
        if len(a) != len(mine) or any(x.shape != y.shape or x.dtype != y.dtype
                                      for x, y in zip(a, mine)):
            raise ValueError("sketch bytes do not fit this profile (other profile or format)")
        return cls(NumericSketch(profile.grid, *a[1:6]),
                   NumericSketch(profile.score_grid, *a[6:11]),
                   CategoricalSketch(*a[11:15]), GroupSketch(a[15]), int(a[0][0]), profile)
