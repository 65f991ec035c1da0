"""The reference profile, and the sketch of one window (one per window and source partition).

:class:`ReferenceProfile` is built once from a reference sample: per numeric feature a grid of
``n_bins + 1`` quantiles (1000 bins by default) and the median (the moments' pivot), the
score's grid, the category list of each categorical (most frequent first, at most
``max_categories``), the sensitive groups, and the reference's own sketches on those grids.
Its id is a hash of its content.

:class:`WindowSketch` bundles the sketches a window needs: numeric features, score,
categoricals, per-group prediction / confusion counts. ``update(batch)`` takes a whole
:class:`~kernels.batch.ColumnBatch` (one numba call per family), ``merge(other)`` returns a new
sketch (``self`` first: the float moments depend on the order, integers do not), and
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

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from kernels.batch import CAT_MISSING, CAT_UNSEEN, VALID, ColumnBatch
from kernels.categorical import CategoricalSketch, GroupSketch
from kernels.numeric import NumericSketch, build_lut
from kernels.serial import pack_arrays, unpack_arrays


def quantile_grid(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, float]:
    """``n_bins + 1`` quantiles of the finite values, and their median."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.zeros(n_bins + 1), 0.0
    return np.quantile(v, np.linspace(0.0, 1.0, n_bins + 1)), float(np.median(v))


class ReferenceProfile:
    def __init__(self, head: dict[str, Any], edges: np.ndarray, pivot: np.ndarray,
                 score_edges: np.ndarray, score_pivot: np.ndarray, reference: "WindowSketch"
                 | None = None) -> None:
        self.head = head
        self.edges = edges
        self.pivot = pivot
        self.score_edges = score_edges
        self.score_pivot = score_pivot
        self._luts = (build_lut(edges), build_lut(score_edges))
        self.reference = reference

    numeric_names = property(lambda self: list(self.head["numeric"]))
    categorical_names = property(lambda self: list(self.head["categorical"]))
    categories = property(lambda self: {k: list(v) for k, v in self.head["categories"].items()})
    groups = property(lambda self: list(self.head["groups"]))
    metadata = property(lambda self: dict(self.head["metadata"]))
    has_score = property(lambda self: bool(self.head["has_score"]))
    max_categories = property(lambda self: int(self.head["max_categories"]))
    top_k = property(lambda self: int(self.head["top_k"]))

    @property
    def profile_id(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()[:32]

    @classmethod
    def build(cls, numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray] | None
              = None, score: np.ndarray | None = None, prediction: np.ndarray | None = None,
              label: np.ndarray | None = None, group: np.ndarray | None = None,
              n_bins: int = 1000, top_k: int = 16, max_categories: int = 256,
              metadata: dict | None = None) -> "ReferenceProfile":
        """A profile from reference columns (raw values; strings for categoricals)."""
        categorical = categorical or {}
        names = list(numeric)
        grids = [quantile_grid(numeric[n], n_bins) for n in names]
        edges = np.array([g[0] for g in grids]).reshape(len(names), n_bins + 1)
        pivot = np.array([g[1] for g in grids], np.float64)
        if score is not None:
            se, sp = quantile_grid(score, n_bins)
        else:
            se, sp = np.zeros(n_bins + 1), 0.0
        cats = {}
        for n, v in categorical.items():
            s = np.asarray(v, object)
            s = s[np.array([isinstance(x, str) for x in s], bool)] if s.size else s
            u, c = np.unique(s.astype(str), return_counts=True) if s.size else ([], [])
            order = np.lexsort((np.asarray(u), -np.asarray(c))) if len(u) else []
            cats[n] = [str(u[i]) for i in order][:max_categories]
        groups = sorted({str(x) for x in group if x is not None}) if group is not None else []
        head = {"format": 1, "numeric": names, "categorical": list(categorical),
                "categories": cats, "groups": groups, "n_bins": n_bins, "top_k": top_k,
                "max_categories": max_categories, "has_score": score is not None,
                "metadata": metadata or {}}
        prof = cls(head, edges, pivot, se.reshape(1, -1), np.array([sp]))
        prof.reference = WindowSketch.empty(prof).update(
            reference_batch(prof, numeric, categorical, score, prediction, label, group))
        return prof

    # bytes ---------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        ref = self.reference.to_bytes() if self.reference is not None else b""
        head = orjson.dumps(self.head, option=orjson.OPT_SORT_KEYS)
        return pack_arrays([np.frombuffer(head, np.uint8), self.edges, self.pivot,
                            self.score_edges, self.score_pivot, np.frombuffer(ref, np.uint8)])

    @classmethod
    def from_bytes(cls, b: bytes) -> "ReferenceProfile":
        head, edges, pivot, se, sp, ref = unpack_arrays(b)
        prof = cls(orjson.loads(head.tobytes()), edges, pivot, se, sp)
        prof.reference = WindowSketch.from_bytes(ref.tobytes(), prof) if ref.size else None
        return prof

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> "ReferenceProfile":
        return cls.from_bytes(Path(path).read_bytes())


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
        (lut, lo, sc), (slut, slo, ssc) = profile._luts
        return cls(NumericSketch.empty(profile.edges, profile.pivot, (lut, lo, sc)),
                   NumericSketch.empty(profile.score_edges, profile.score_pivot,
                                       (slut, slo, ssc)),
                   CategoricalSketch.empty(len(profile.categorical_names),
                                           max([len(c) for c in profile.categories.values()],
                                               default=0), profile.top_k),
                   GroupSketch.empty(len(profile.groups)), 0, profile)

    def update(self, b: ColumnBatch) -> "WindowSketch":
        """Absorb a whole batch; returns self."""
        n = b.n_events
        if n == 0:
            return self
        self.numeric.update(b.numeric, b.numeric_state)
        score_state = np.where(np.isnan(b.score), 1, 0).astype(np.int8).reshape(1, n)
        self.score.update(b.score.reshape(1, n), score_state)
        self.categorical.update(b.categorical, b.unseen_hash)
        self.groups.update(b.group, b.prediction, b.label)
        self.n_events += n
        return self

    def merge(self, other: "WindowSketch") -> "WindowSketch":
        """A new sketch, ``self`` then ``other``."""
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
        return pack_arrays([np.array([self.n_events], np.int64), *self.numeric.state_arrays(),
                            *self.score.state_arrays(), *self.categorical.state_arrays(),
                            self.groups.counts])

    @classmethod
    def from_bytes(cls, b: bytes, profile: ReferenceProfile | None = None) -> "WindowSketch":
        a = unpack_arrays(b)
        edges = profile.edges if profile is not None else np.zeros((a[1].shape[0], 2))
        pivot = profile.pivot if profile is not None else np.zeros(a[1].shape[0])
        sedges = profile.score_edges if profile is not None else np.zeros((1, 2))
        spivot = profile.score_pivot if profile is not None else np.zeros(1)
        luts = profile._luts if profile is not None else (None, None)
        return cls(NumericSketch(edges, pivot, a[1], a[2], a[3], luts[0]),
                   NumericSketch(sedges, spivot, a[4], a[5], a[6], luts[1]),
                   CategoricalSketch(a[7], a[8], a[9], a[10]), GroupSketch(a[11]),
                   int(a[0][0]), profile)
