"""Slow, obviously correct reference implementations, and the table of oracles.

Each statistic of ``kernels`` maps to the library (or plain numpy) computation it must equal;
``tests/test_kernels_stats.py`` walks ``ORACLES``. A new statistic is one new row.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon
from dataclasses import dataclass
from typing import Any, Callable

from kernels.numeric_stats import _harmonic, _harmonic2, ad_pvalue, ks_pvalue
from kernels.categorical_stats import PSI_FLOOR


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


# -- binned numpy versions of the kernels' formulas, one statistic at a time -------------
# (kernels/numeric_stats.py computes them all in one numba pass; these are what it must equal)

def ks(cw: np.ndarray, cr: np.ndarray) -> tuple[float, float, float]:
    """D, its asymptotic p-value and an upper bound of the exact D, from bin counts on one
    grid (underflow and overflow included).

    Both empirical CDFs are exact just below every edge, so D (the largest gap there) never
    exceeds the exact two-sample D. Inside bin k, starting from gap ``g`` at its left end,
    the window CDF rises by at most its bin mass ``pw`` and the reference's by ``pr``, so the
    exact gap stays within ``max(|g + pw|, |g - pr|)``: the largest of these over the bins
    is ``d_upper``, and ``d_upper - D <= max_k max(pw_k, pr_k)`` (the largest bin mass;
    about 1/n_bins for the reference on its own grid).

    >>> d, p, hi = ks(np.array([0, 5, 5, 0]), np.array([0, 2, 8, 0]))
    >>> round(d, 3), round(hi, 3)
    (0.3, 0.8)
    """
    nw, nr = cw.sum(), cr.sum()
    fw = np.cumsum(cw) / nw
    fr = np.cumsum(cr) / nr
    gap = fw - fr
    d = float(np.abs(gap).max())
    left = np.concatenate([[0.0], gap[:-1]])
    d_upper = float(np.maximum(np.abs(left + cw / nw), np.abs(left - cr / nr)).max())
    return d, ks_pvalue(d, int(nw), int(nr)), max(d_upper, d)




def _ad_sigma(n1: int, n2: int) -> float:
    """Scholz & Stephens' sigma of the 2-sample statistic, in closed form: scipy's
    ``h = Σ_{i<N} 1/i`` and ``g = Σ_{i<N-1} Σ_{j>i}^{N-1} 1/((N-i) j)``, which is
    ``H2(N) - (2 H(N) - 1/N) / N`` (an O(1) identity for scipy's O(N) double sum)."""
    n = np.array([n1, n2], np.float64)
    N = n1 + n2
    k = 2
    H = (1.0 / n).sum()
    h = _harmonic(N - 1)
    g = _harmonic2(N) - (2.0 * _harmonic(N) - 1.0 / N) / N
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * H
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * H - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * H + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    return math.sqrt((a * N**3 + b * N**2 + c * N + d) / ((N - 1.0) * (N - 2.0) * (N - 3.0)))




def anderson_darling(cw: np.ndarray, cr: np.ndarray) -> tuple[float | None, float | None]:
    """Normalised k-sample AD statistic and p-value, values tied within bins."""
    keep = (cw + cr) > 0
    if keep.sum() < 2:
        return None, None
    w = cw[keep].astype(np.float64)
    r = cr[keep].astype(np.float64)
    lj = w + r
    N = lj.sum()
    bj = np.cumsum(lj) - lj + lj / 2.0
    a2 = 0.0
    for s in (w, r):
        ni = s.sum()
        mij = np.cumsum(s) - s / 2.0
        inner = lj / N * (N * mij - bj * ni) ** 2 / (bj * (N - bj) - N * lj / 4.0)
        a2 += inner.sum() / ni
    a2 *= (N - 1.0) / N
    stat = (a2 - 1) / _ad_sigma(int(w.sum()), int(r.sum()))
    return float(stat), float(ad_pvalue(np.array([stat]), np.array([a2 * (N - 1.0) / N]))[0])


def deciles(counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Fine bins (underflow, n_bins, overflow) summed into the 10 reference deciles."""
    cut = np.rint(np.arange(1, 10) * n_bins / 10).astype(np.int64)
    c = np.cumsum(counts[..., :-1], axis=-1)  # through each fine bin, overflow excluded
    at = c[..., cut]
    total = counts.sum(axis=-1, keepdims=True)
    edges = np.concatenate([np.zeros(at.shape[:-1] + (1,), np.int64), at, total], axis=-1)
    return np.diff(edges, axis=-1)


def psi(pw_counts: np.ndarray, pr_counts: np.ndarray) -> float:
    pw = np.maximum(pw_counts / max(pw_counts.sum(), 1), PSI_FLOOR)
    pr = np.maximum(pr_counts / max(pr_counts.sum(), 1), PSI_FLOOR)
    return float(np.sum((pw - pr) * np.log(pw / pr)))


def js_distance(cw: np.ndarray, cr: np.ndarray) -> float:
    p = cw / cw.sum()
    q = cr / cr.sum()
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(math.sqrt(max((kl_p + kl_q) / 2.0, 0.0) / math.log(2.0)))


def bin_points(edges: np.ndarray) -> np.ndarray:
    """Where each bin's mass sits for Wasserstein: underflow, midpoints, overflow."""
    return np.concatenate([[edges[0]], (edges[:-1] + edges[1:]) / 2.0, [edges[-1]]])


def wasserstein(cw: np.ndarray, cr: np.ndarray, points: np.ndarray) -> float:
    fw = np.cumsum(cw) / cw.sum()
    fr = np.cumsum(cr) / cr.sum()
    return float(np.sum(np.abs(fw - fr)[:-1] * np.diff(points)))


def hellinger_numpy(cw: np.ndarray, cr: np.ndarray) -> float:
    """Hellinger distance of two count vectors: ||sqrt(p) - sqrt(q)||_2 / sqrt(2)."""
    p, q = cw / cw.sum(), cr / cr.sum()
    return float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def hellinger_p_scipy(cw: np.ndarray, cr: np.ndarray) -> float:
    """Asymptotic p of the Hellinger distance: 8 n m / (n + m) H^2 ~ chi2(k - 1)."""
    n, m = cw.sum(), cr.sum()
    k = int(((cw + cr) > 0).sum())
    return float(stats.chi2.sf(8.0 * n * m / (n + m) * hellinger_numpy(cw, cr) ** 2, k - 1))


def ks_pvalue_scipy(d: float, n: int, m: int) -> float:
    return float(stats.kstwobign.sf(d * math.sqrt(n * m / (n + m))))


def ad_tail_marsaglia(a2: float) -> float:
    """P(A2 > z) of the asymptotic Anderson-Darling law by Marsaglia & Marsaglia (2004)'s
    series for z > 2 (an independent check of the kernel's sqrt(3) erfc(sqrt(z)) tail)."""
    z = a2
    e = 1.0776 - (2.30695 - (.43424 - (.082433 - (.008056 - .0003146 * z) * z) * z) * z) * z
    return -math.expm1(-math.exp(e))


def weighted_sd(points: np.ndarray, counts: np.ndarray) -> float:
    mean = np.average(points, weights=counts)
    return float(np.sqrt(np.average((points - mean) ** 2, weights=counts)))


@dataclass(frozen=True)
class NumericCase:
    """One window against one reference: raw values, fine-grid counts, the kernel's figures
    (``s``: :func:`kernels.numeric_stats.numeric_stats` of this one feature)."""

    win: np.ndarray
    ref: np.ndarray
    edges: np.ndarray
    n_bins: int
    s: dict

    @property
    def cw(self) -> np.ndarray:
        return numpy_bins(self.win, self.edges)

    @property
    def cr(self) -> np.ndarray:
        return numpy_bins(self.ref, self.edges)

    @property
    def dw(self) -> np.ndarray:
        return decile_counts(self.win, self.edges, self.n_bins)

    @property
    def dr(self) -> np.ndarray:
        return decile_counts(self.ref, self.edges, self.n_bins)


@dataclass(frozen=True)
class CategoricalCase:
    """Window and reference counts over the reference categories + "unseen", and the
    kernel's :class:`kernels.categorical_stats.CategoricalStats` of them."""

    cw: np.ndarray
    cr: np.ndarray
    s: Any


@dataclass(frozen=True)
class Oracle:
    """One statistic: the kernels' figure, the figure it must equal, on what."""

    kernel: Callable[[Any], float | None]
    oracle: Callable[[Any], float | None]
    feeds: str
    rel: float = 1e-9
    abs: float = 1e-9
    applies: Callable[[Any], bool] = lambda case: True


def _ad_p_scipy_range(c: NumericCase) -> bool:
    return ad_scipy(c.cw, c.cr)[1] > 0.001


def _ad_p_tail(c: NumericCase) -> bool:
    return bool(np.isfinite(c.s["ad"])) and not _ad_p_scipy_range(c) and \
        2.0 < c.s["ad_a2kn"] < 20.0


#: statistic -> its oracle; tests/test_kernels_stats.py walks this table on many kinds of
#: data (NUMERIC over pairs of distributions, CATEGORICAL over random count vectors).
NUMERIC_ORACLES: dict[str, Oracle] = {
    "ks": Oracle(lambda c: c.s["ks"], lambda c: ks(c.cw, c.cr)[0],
                 "fine-grid counts (numpy); vs scipy's exact D: test_ks_*"),
    "ks_p": Oracle(lambda c: c.s["ks_p"],
                   lambda c: ks_pvalue_scipy(c.s["ks"], c.win.size, c.ref.size),
                   "D and sizes: scipy.stats.kstwobign", abs=1e-300),
    "psi": Oracle(lambda c: c.s["psi"], lambda c: psi_numpy(c.dw, c.dr),
                  "decile counts from the raw values"),
    "js": Oracle(lambda c: c.s["js"], lambda c: js_scipy(c.dw, c.dr),
                 "decile counts: scipy.spatial.distance.jensenshannon"),
    "wasserstein": Oracle(lambda c: c.s["wasserstein"],
                          lambda c: wasserstein_scipy(c.cw, c.cr, bin_points(c.edges)),
                          "bin counts at the bins' points: scipy.stats.wasserstein_distance"),
    "wasserstein_sd": Oracle(lambda c: c.s["wasserstein_sd"], lambda c: wasserstein_scipy(
        c.cw, c.cr, bin_points(c.edges)) / weighted_sd(bin_points(c.edges), c.cr),
        "the same over the reference's standard deviation on those points", rel=1e-7),
    "ad": Oracle(lambda c: c.s["ad"], lambda c: ad_scipy(c.cw, c.cr)[0],
                 "values replaced by bin index: scipy.stats.anderson_ksamp"),
    "ad_p": Oracle(lambda c: c.s["ad_p"], lambda c: ad_scipy(c.cw, c.cr)[1],
                   "scipy's table (p in [0.001, 0.25])", applies=_ad_p_scipy_range),
    "ad_p_tail": Oracle(lambda c: c.s["ad_p"], lambda c: ad_tail_marsaglia(c.s["ad_a2kn"]),
                        "beyond scipy's table: Marsaglia's series of the asymptotic law",
                        rel=0.05, applies=_ad_p_tail),
    "decile_p": Oracle(lambda c: c.s["decile_p"], lambda c: chi2_scipy(c.dw, c.dr)[1],
                       "decile counts: scipy.stats.chi2_contingency (PSI's and JS's test)",
                       abs=1e-12),
    "hellinger": Oracle(lambda c: c.s["hellinger"], lambda c: hellinger_numpy(c.dw, c.dr),
                        "decile counts: ||sqrt p - sqrt q|| / sqrt 2 in numpy"),
    "hellinger_p": Oracle(lambda c: c.s["hellinger_p"],
                          lambda c: hellinger_p_scipy(c.dw, c.dr),
                          "decile counts: scipy.stats.chi2", abs=1e-12),
}

CATEGORICAL_ORACLES: dict[str, Oracle] = {
    "chi2": Oracle(lambda c: c.s.chi2, lambda c: chi2_scipy(c.cw, c.cr)[0],
                   "category counts: scipy.stats.chi2_contingency",
                   applies=lambda c: c.s.chi2_p is not None),
    "chi2_p": Oracle(lambda c: c.s.chi2_p, lambda c: chi2_scipy(c.cw, c.cr)[1],
                     "category counts: scipy.stats.chi2_contingency", abs=1e-12,
                     applies=lambda c: c.s.chi2_p is not None),
    "psi": Oracle(lambda c: c.s.psi, lambda c: psi_numpy(c.cw, c.cr), "category counts"),
    "js": Oracle(lambda c: c.s.js, lambda c: js_scipy(c.cw, c.cr), "category counts"),
    "hellinger": Oracle(lambda c: c.s.hellinger, lambda c: hellinger_numpy(c.cw, c.cr),
                        "category counts"),
    "hellinger_p": Oracle(lambda c: c.s.hellinger_p, lambda c: hellinger_p_scipy(c.cw, c.cr),
                          "category counts: scipy.stats.chi2", abs=1e-12,
                          applies=lambda c: c.s.hellinger_p is not None),
}

#: statistics held by other tests (module :: test), each against its oracle
ORACLES_ELSEWHERE = {
    "fairness": ("fairlearn.metrics", "tests/test_kernels_stats.py::test_fairness_equals_fairlearn"),
    "bins": (numpy_bins, "tests/test_kernels_sketch.py"),
    "mean / variance": (exact_mean_var, "tests/test_kernels_sketch.py"),
    "out_of_range / outliers": (interval_counts, "tests/test_kernels_quality.py"),
    "row outlier score": (forest_scores, "tests/test_kernels_quality.py"),
    "row outlier detector": ("sklearn.ensemble.IsolationForest", "tests/test_kernels_quality.py"),
    "delay": (delay_counts, "tests/test_kernels_quality.py"),
}
