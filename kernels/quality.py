"""Data quality beyond bad values: ranges, robust outliers, row outliers, freshness.

Row outliers come from :class:`~kernels.forest.IsolationForest` (fitted on the reference,
stored in the profile, re-exported here).

- :class:`QualityBounds` — per numeric feature a range ``[range_lo, range_hi]`` (configured, or
  learned from the reference's 0.1% / 99.9% quantiles widened by a margin) and robust-z
  bounds ``median ∓ z · 1.4826 · MAD``; plus the freshness limit ``max_delay_ms``.
- :class:`QualitySketch` — exact int64 counters of one window against those bounds and the
  forest: values below / above the range, robust outliers, rows scored and rows whose score
  exceeds the forest's threshold, and event-time lag (ingest − event time). Integer state, so
  any split and merge order give the same bytes; its size depends on the feature count only.

Bad values (decoder state MISSING / NULL / TYPE_ERROR, NaN, ±inf) are never range violations
or outliers: :class:`~kernels.numeric.NumericSketch` counts them. The forest still scores the
row they are in, with the median in their place.

>>> forest = IsolationForest.fit(np.random.default_rng(0).normal(size=(2000, 2)), n_trees=20,
...                             seed=1)
>>> b = QualityBounds(("a", "b"), np.array([-1.0, -np.inf]), np.array([1.0, np.inf]),
...                   np.array([-5.0, -5.0]), np.array([5.0, 5.0]))
>>> q = QualitySketch.empty(2, b, forest)
>>> q = q.update_arrays(np.array([[9.0, 2.0, np.nan], [-7.0, 0.0, 0.0]]),
...                     np.zeros((2, 3), np.int8))
>>> q.range_counts.tolist(), q.outliers.tolist(), q.rows.tolist()
([[0, 2], [0, 0]], [1, 1], [3, 1])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from kernels.forest import IsolationForest
from kernels.jit import Scalar, kernel
from kernels.serial import pack_arrays, unpack_arrays

if TYPE_CHECKING:
    from kernels.batch import ColumnBatch


class ProfileStats(Protocol):
    """What the bounds need of a reference profile (:class:`kernels.window.ReferenceProfile`,
    which imports this module)."""

    @property
    def numeric_names(self) -> list[str]: ...

    @property
    def quality_settings(self) -> dict[str, Any]: ...

    quality_stats: np.ndarray

MAD_TO_SD = 1.4826
QUANTILE_SPAN_SD = 6.180464612335626  # q0.999 - q0.001 of the standard normal, in sd
I64_MAX = np.iinfo(np.int64).max

__all__ = ["IsolationForest", "QualityBounds", "QualitySketch", "reference_quality_stats"]


# -- kernels ---------------------------------------------------------------------------------

@kernel
def _intervals(values: np.ndarray, state: np.ndarray, range_lo: np.ndarray, range_hi: np.ndarray,
               z_lo: np.ndarray, z_hi: np.ndarray, range_counts: np.ndarray, outliers: np.ndarray) -> None:
    """Per feature: valid finite values below range_lo / above range_hi, and outside
    [z_lo, z_hi]. values float64 [F, N], state int8 [F, N]; adds into the int64 counters."""
    n_feat, n = values.shape
    for f in range(n_feat):
        lo, hi, zl, zh = range_lo[f], range_hi[f], z_lo[f], z_hi[f]
        row = values[f]
        srow = state[f]
        below = 0
        above = 0
        out = 0
        for i in range(n):
            x = row[i]
            ok = (srow[i] == 0) & (abs(x) < np.inf)  # False for NaN and ±inf
            below += ok & (x < lo)
            above += ok & (x > hi)
            out += ok & ((x < zl) | (x > zh))
        range_counts[f, 0] += below
        range_counts[f, 1] += above
        outliers[f] += out


@kernel
def _delay(event_ms: np.ndarray, ingest_ms: np.ndarray, max_delay_ms: Scalar, delay: np.ndarray) -> None:
    """delay int64 [4] += events with both times (>= 0), events with lag > max_delay_ms
    (when max_delay_ms > 0), Σ max(0, lag) (saturating at int64 max), max of that."""
    events = 0
    stale = 0
    total = delay[2]
    mx = delay[3]
    for i in range(event_ms.shape[0]):
        e = event_ms[i]
        g = ingest_ms[i]
        if e < 0 or g < 0:
            continue
        lag = g - e
        events += 1
        if max_delay_ms > 0 and lag > max_delay_ms:
            stale += 1
        if lag > 0:
            total = I64_MAX if total > I64_MAX - lag else total + lag
            mx = max(mx, lag)
    delay[0] += events
    delay[1] += stale
    delay[2] = total
    delay[3] = mx


# -- bounds ----------------------------------------------------------------------------------

def reference_quality_stats(columns: list[np.ndarray]) -> np.ndarray:
    """Per column [q0.001, q0.999, median, MAD] of its finite values (NaN row if none).

    >>> reference_quality_stats([np.arange(1001.0), np.array([np.nan])]).tolist()
    [[1.0, 999.0, 500.0, 250.0], [nan, nan, nan, nan]]
    """
    out = np.full((len(columns), 4), np.nan)
    for i, c in enumerate(columns):
        v = np.asarray(c, np.float64)
        v = v[np.isfinite(v)]
        if v.size:
            q = np.quantile(v, [0.001, 0.999, 0.5])
            out[i] = [q[0], q[1], q[2], np.median(np.abs(v - q[2]))]
    return out


@dataclass(frozen=True, eq=False)
class QualityBounds:
    """Per numeric feature: range ``[range_lo, range_hi]`` and robust-z bounds
    ``[z_lo, z_hi]`` (float64 [F] each, ±inf = no bound); ``max_delay_ms`` (<= 0: freshness
    is not counted). Arrays are read-only; two bounds are equal when names, every array
    (bit for bit) and the delay are, so workers built from the same profile and config agree.
    """

    names: tuple[str, ...]
    range_lo: np.ndarray
    range_hi: np.ndarray
    z_lo: np.ndarray
    z_hi: np.ndarray
    max_delay_ms: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "max_delay_ms", int(self.max_delay_ms))
        for k in ("range_lo", "range_hi", "z_lo", "z_hi"):
            a = np.array(getattr(self, k), np.float64).reshape(-1)
            if a.shape != (len(self.names),):
                raise ValueError(f"QualityBounds.{k}: {a.shape[0]} values for "
                                 f"{len(self.names)} features")
            a.flags.writeable = False
            object.__setattr__(self, k, a)

    @classmethod
    def from_profile(cls, profile: ProfileStats, ranges: dict[str, tuple[float | None, float | None]]
                     | None = None, max_delay_ms: int = 0) -> "QualityBounds":
        """Bounds learned from ``profile.quality_stats`` with the profile's ``range_margin``
        ``m`` and ``outlier_z`` ``z``:

        - range: ``[q0.001 - m·(q0.999 - q0.001), q0.999 + m·(q0.999 - q0.001)]``; a feature
          in ``ranges`` takes the configured ``(lo, hi)`` instead (None = unbounded);
        - robust z: ``median ∓ z·s`` with ``s = 1.4826·MAD``; when MAD is 0 (more than half
          the reference on one value) ``s = (q0.999 - q0.001) / 6.18`` (the sd a normal with
          that spread would have), and when that is 0 too (a constant reference)
          ``s = 1e-9 · max(|median|, 1)``, so any value visibly off the constant is an outlier
          while its own rounding is not;
        - a feature with no finite reference value has no bounds.

        >>> from kernels.window import ReferenceProfile
        >>> p = ReferenceProfile.build({"x": np.arange(1001.0), "k": np.full(1001, 2.0)})
        >>> b = QualityBounds.from_profile(p, ranges={"k": (0, None)})
        >>> b.range_lo.round(6).tolist(), b.range_hi.tolist(), b.z_hi.round(9).tolist()
        ([-98.8, 0.0], [1098.8, inf], [2723.9, 2.000000012])
        """
        names = tuple(profile.numeric_names)
        st = np.asarray(profile.quality_stats, np.float64).reshape(len(names), 4)
        q = profile.quality_settings
        m, z = float(q["range_margin"]), float(q["outlier_z"])
        q0, q1, med, mad = st.T
        span = q1 - q0
        lo = np.where(np.isnan(q0), -np.inf, q0 - m * span)
        hi = np.where(np.isnan(q1), np.inf, q1 + m * span)
        s = MAD_TO_SD * mad
        s = np.where(s > 0, s, span / QUANTILE_SPAN_SD)
        s = np.where(s > 0, s, 1e-9 * np.maximum(np.abs(med), 1.0))
        z_lo = np.where(np.isnan(med), -np.inf, med - z * s)
        z_hi = np.where(np.isnan(med), np.inf, med + z * s)
        for name, (a, b) in (ranges or {}).items():
            if name not in names:
                raise ValueError(f"quality range for {name!r}: not a numeric feature of the "
                                 f"profile ({', '.join(names) or 'none'})")
            a = -np.inf if a is None else float(a)
            b = np.inf if b is None else float(b)
            if not a <= b:
                raise ValueError(f"quality range for {name!r}: low {a} above high {b}")
            i = names.index(name)
            lo[i], hi[i] = a, b
        return cls(names, lo, hi, z_lo, z_hi, max_delay_ms)

    def to_arrays(self) -> list[np.ndarray]:
        return [self.range_lo, self.range_hi, self.z_lo, self.z_hi,
                np.array([self.max_delay_ms], np.int64)]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QualityBounds):
            return NotImplemented
        return self.names == other.names and all(
            a.tobytes() == b.tobytes() for a, b in zip(self.to_arrays(), other.to_arrays()))

    def __hash__(self) -> int:
        return hash((self.names, *(a.tobytes() for a in self.to_arrays())))


# -- the sketch ------------------------------------------------------------------------------

class QualitySketch:
    """Exact quality counters of one window (see the module docstring), all int64:

    ``range_counts`` [F, 2] (valid finite values below ``range_lo``, above ``range_hi``),
    ``outliers`` [F] (valid finite values outside ``[z_lo, z_hi]``), ``rows`` [2] (rows
    scored by the forest, rows scoring above its threshold; 0 without a forest), ``delay``
    [4] (events with both times, events with ingest − event > ``max_delay_ms`` (0 when off),
    Σ max(0, ingest − event) in ms saturating at 2**63 - 1, the max of that).
    A time below 0 means absent (Kafka's -1); a batch without ``ingest_time_ms`` adds no
    delay counts. ``bounds`` and ``forest`` are used by :meth:`update`, never serialized.
    ``enabled=False`` (drift-only monitors) makes :meth:`update` a no-op: the counters stay
    zero, the bytes keep their shape.
    """

    def __init__(self, bounds: QualityBounds, forest: IsolationForest | None,
                 range_counts: np.ndarray, outliers: np.ndarray, rows: np.ndarray,
                 delay: np.ndarray, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bounds = bounds
        self.forest = forest
        self.range_counts = range_counts
        self.outliers = outliers
        self.rows = rows
        self.delay = delay

    @classmethod
    def empty(cls, n_features: int, bounds: QualityBounds, forest: IsolationForest | None,
              enabled: bool = True) -> "QualitySketch":
        """A sketch that has seen nothing (the identity of :meth:`merge`)."""
        if len(bounds.names) != n_features or (forest is not None
                                               and forest.n_features != n_features):
            raise ValueError(f"bounds ({len(bounds.names)}) / forest features do not match "
                             f"{n_features} numeric features")
        return cls(bounds, forest, np.zeros((n_features, 2), np.int64),
                   np.zeros(n_features, np.int64), np.zeros(2, np.int64),
                   np.zeros(4, np.int64), enabled)

    def update(self, batch: ColumnBatch) -> "QualitySketch":
        """Absorb a :class:`~kernels.batch.ColumnBatch`; returns self."""
        if not self.enabled:
            return self
        self.update_arrays(batch.numeric, batch.numeric_state)
        if batch.ingest_time_ms is not None and batch.n_events:
            _delay(np.ascontiguousarray(batch.event_time_ms, np.int64),
                   np.ascontiguousarray(batch.ingest_time_ms, np.int64),
                   self.bounds.max_delay_ms, self.delay)
        return self

    def update_arrays(self, values: np.ndarray, state: np.ndarray) -> "QualitySketch":
        """Absorb numeric ``values`` [F, N] with decoder ``state`` [F, N] (interval counts:
        one kernel; row outliers: one kernel); returns self."""
        values = np.ascontiguousarray(values, np.float64)
        state = np.ascontiguousarray(state, np.int8)
        if values.shape != state.shape or values.shape[0] != self.outliers.shape[0]:
            raise ValueError(f"values {values.shape} / state {state.shape} do not match "
                             f"{self.outliers.shape[0]} features")
        n = values.shape[1]
        if n == 0:
            return self
        b = self.bounds
        _intervals(values, state, b.range_lo, b.range_hi, b.z_lo, b.z_hi, self.range_counts,
                   self.outliers)
        if self.forest is not None:
            self.rows[0] += n
            self.rows[1] += self.forest.count_outliers(values, state)
        return self

    def merge(self, other: "QualitySketch") -> "QualitySketch":
        """A new sketch holding both (integer sums, a saturating sum and a max: any order,
        the same bytes). Keeps this sketch's bounds and forest."""
        total = min(int(self.delay[2]) + int(other.delay[2]), int(I64_MAX))
        delay = np.array([self.delay[0] + other.delay[0], self.delay[1] + other.delay[1],
                          total, max(self.delay[3], other.delay[3])], np.int64)
        return QualitySketch(self.bounds, self.forest or other.forest,
                             self.range_counts + other.range_counts,
                             self.outliers + other.outliers, self.rows + other.rows, delay,
                             self.enabled)

    def state_arrays(self) -> list[np.ndarray]:
        return [self.range_counts, self.outliers, self.rows, self.delay]

    def to_bytes(self) -> bytes:
        """The state arrays (not bounds or forest): see :mod:`kernels.serial`."""
        return pack_arrays(self.state_arrays())

    @classmethod
    def from_bytes(cls, b: bytes, bounds: QualityBounds, forest: IsolationForest | None
                   ) -> "QualitySketch":
        """Inverse of :meth:`to_bytes` (shapes are checked against ``bounds``)."""
        return cls.from_state(unpack_arrays(b), bounds, forest)

    @classmethod
    def from_state(cls, arrays: list[np.ndarray], bounds: QualityBounds,
                   forest: IsolationForest | None) -> "QualitySketch":
        mine = cls.empty(len(bounds.names), bounds, forest).state_arrays()
        if len(arrays) != len(mine) or any(x.shape != y.shape or x.dtype != y.dtype
                                           for x, y in zip(arrays, mine)):
            raise ValueError("quality sketch bytes do not fit these bounds")
        range_counts, outliers, rows, delay = arrays
        return cls(bounds, forest, range_counts, outliers, rows, delay)
