"""Slow, obviously correct reference implementations, and the table of oracles.

Each statistic of ``kernels`` maps to the library (or plain numpy) computation it must equal;
``tests/test_kernels_stats.py`` walks ``ORACLES``. A new statistic is one new row.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon


def numpy_bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (underflow, bins, overflow) with searchsorted + bincount."""
    v = values[np.isfinite(values)]
    return np.bincount(np.searchsorted(edges, v, side="right"), minlength=edges.size + 1)


def psi_numpy(cw: np.ndarray, cr: np.ndarray, floor: float = 1e-4) -> float:
    pw = np.maximum(cw / cw.sum(), floor)
    pr = np.maximum(cr / cr.sum(), floor)
    return float(np.sum((pw - pr) * np.log(pw / pr)))


def decile_counts(values: np.ndarray, edges: np.ndarray, n_bins: int) -> np.ndarray:
    """Counts in the reference deciles, straight from the raw values (underflow joins the
    first decile, overflow the last)."""
    cut = edges[np.rint(np.arange(1, 10) * n_bins / 10).astype(int)]
    v = values[np.isfinite(values)]
    return np.bincount(np.searchsorted(cut, v, side="right"), minlength=10)


def chi2_scipy(cw: np.ndarray, cr: np.ndarray) -> tuple[float, float]:
    t = np.vstack([cw, cr])
    t = t[:, t.sum(axis=0) > 0]
    r = stats.chi2_contingency(t, correction=False)
    return float(r.statistic), float(r.pvalue)


def js_scipy(cw: np.ndarray, cr: np.ndarray) -> float:
    return float(jensenshannon(cw / cw.sum(), cr / cr.sum(), base=2))


def wasserstein_scipy(cw: np.ndarray, cr: np.ndarray, points: np.ndarray) -> float:
    return float(stats.wasserstein_distance(points, points, cw, cr))


def ad_scipy(cw: np.ndarray, cr: np.ndarray) -> tuple[float, float]:
    """anderson_ksamp on the values replaced by their bin index."""
    import warnings

    idx = np.arange(cw.size)
    a, b = np.repeat(idx, cw), np.repeat(idx, cr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = stats.anderson_ksamp([a, b], variant="midrank")
    return float(r.statistic), float(r.pvalue)


def finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x[np.isfinite(x)]


def bin_counts(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Counts per bin of the finite values (same as numpy_bins, any shape of input)."""
    return numpy_bins(np.asarray(x, np.float64).ravel(), edges)


def exact_mean_var(x: np.ndarray) -> tuple[float, float]:
    """Mean and sample variance of the finite values in rational arithmetic, rounded once."""
    from fractions import Fraction

    v = [Fraction(float(a)) for a in finite(x)]
    n = len(v)
    s = sum(v, Fraction(0))
    q = sum((a * a for a in v), Fraction(0))
    return float(s / n), (float((q - s * s / n) / (n - 1)) if n > 1 else float("nan"))


def interval_counts(values: np.ndarray, state: np.ndarray, range_lo, range_hi, z_lo, z_hi
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: valid finite values below / above the range ([F, 2]) and outside the
    robust-z bounds ([F]), with numpy masks."""
    v = np.asarray(values, np.float64)
    ok = (np.asarray(state) == 0) & np.isfinite(v)
    lo, hi = np.asarray(range_lo)[:, None], np.asarray(range_hi)[:, None]
    zl, zh = np.asarray(z_lo)[:, None], np.asarray(z_hi)[:, None]
    with np.errstate(invalid="ignore"):
        rc = np.stack([(ok & (v < lo)).sum(1), (ok & (v > hi)).sum(1)], axis=1)
        out = (ok & ((v < zl) | (v > zh))).sum(1)
    return rc.astype(np.int64), out.astype(np.int64)


def forest_scores(split_feature, split_value, leaf_path, medians, sample_size, values,
                  state=None) -> list[float]:
    """Isolation-forest scores by walking each stored tree in plain Python, row by row."""
    import math

    n_feat, n = np.shape(values)
    c = (0.0 if sample_size <= 1 else 1.0 if sample_size == 2 else
         2.0 * (math.log(sample_size - 1) + 0.5772156649015329)
         - 2.0 * (sample_size - 1) / sample_size)
    n_int = len(split_feature[0])
    out = []
    for i in range(n):
        row = []
        for f in range(n_feat):
            x = float(values[f][i])
            good = (state is None or state[f][i] == 0) and math.isfinite(x)
            row.append(x if good else float(medians[f]))
        total = 0.0
        for t in range(len(split_feature)):
            node = 0
            while node < n_int:
                f = int(split_feature[t][node])
                node = 2 * node + (2 if row[f] >= float(split_value[t][node]) else 1)
            total += float(leaf_path[t][node - n_int])
        out.append(2.0 ** (-(total / len(split_feature)) / c))
    return out


def delay_counts(event_ms, ingest_ms, max_delay_ms: int) -> list[int]:
    """[events with both times >= 0, lag > max_delay_ms (when > 0), Σ max(0, lag), max]
    in Python integers."""
    lags = [int(g) - int(e) for e, g in zip(event_ms, ingest_ms) if e >= 0 and g >= 0]
    pos = [max(0, x) for x in lags]
    return [len(lags), sum(x > max_delay_ms for x in lags) if max_delay_ms > 0 else 0,
            min(sum(pos), 2**63 - 1), max(pos, default=0)]


#: statistic -> (the oracle, what the test feeds it)
ORACLES = {
    "psi": (psi_numpy, "decile counts from the raw values"),
    "js": (js_scipy, "bin counts"),
    "wasserstein": (wasserstein_scipy, "bin counts at the bins' points"),
    "chi2": (chi2_scipy, "category counts"),
    "ad": (ad_scipy, "values replaced by bin index"),
    "ks": (stats.ks_2samp, "raw values, within the documented bound"),
    "fairness": ("fairlearn.metrics", "raw arrays"),
    "bins": (numpy_bins, "raw values: searchsorted + bincount, bit for bit"),
    "mean": (exact_mean_var, "raw values, exact rationals: equal after one rounding"),
    "variance": (exact_mean_var, "raw values, exact rationals: equal after one rounding"),
    "out_of_range / outliers": (interval_counts, "raw values and states, exact counts"),
    "row outlier score": (forest_scores, "the forest's arrays walked in Python, 1e-12"),
    "row outlier detector": ("sklearn.ensemble.IsolationForest", "planted outliers: ROC AUC"),
    "delay": (delay_counts, "raw event / ingest times, exact counts"),
}
