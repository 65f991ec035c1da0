"""Moment checks of numeric features and the score: a shift of the mean and a change of the
standard deviation, from the sketches' exact Σx and Σx² (:class:`kernels.numeric.NumericSketch`).

The distribution-shape statistics (KS, PSI, JS, ...) are weak for a pure change of scale: a
variance ×1.25 moves KS D by ~0.03. The sample moments see it directly:

- ``mean_shift``: effect ``|mean_w − mean_r| / sd_r``; test: the two-sample z-test with the
  reference's standard deviation (under "no change" both samples share it),
  ``z = (mean_w − mean_r) / (sd_r · sqrt(1/n + 1/m))``, two-sided.
- ``sd_ratio``: effect ``|sd_w / sd_r − 1|``; test: the log of the variance ratio, whose
  asymptotic variance is ``(κ − 1)(1/n + 1/m)`` with κ = μ4 / σ⁴ the reference's kurtosis
  (delta method on ``var(s²) ≈ (μ4 − σ⁴) / n``), two-sided. The kurtosis correction is what
  keeps heavy tails quiet: with the normal theory (κ = 3) a drift-free lognormal(0, 1)
  feature (κ ≈ 114) pages on sampling noise in most windows.

κ is estimated from the reference histogram on its bin points (:func:`histogram_kurtosis`;
the quantile grid is fine — 1000 bins by default — so a normal feature gets ~3.0-3.1), never
below the normal theory's 3. For heavy tails the estimate errs high (the extreme bin's mass
sits at its midpoint, far out: ~300 for a lognormal(0, 1) sample whose own kurtosis is
~136), which makes the test conservative there, never liberal. (The profile format is
frozen, so the raw sample's kurtosis is not stored; a profile head carrying
``moments[name]["kurtosis"]`` is read first.) With ``reference.rolling_windows`` the mean
and sd are the rolling reference's, κ the profile's (a shape, not a scale).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

MIN_KURTOSIS = 3.0  # never assume lighter tails than the normal's


def kurtosis(x: np.ndarray) -> float | None:
    """μ4 / σ⁴ of the finite values of ``x`` (population moments); None below 4 values or
    with zero variance.

    >>> round(kurtosis(np.array([-1.0, 1.0] * 50)), 6)
    1.0
    """
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    if x.size < 4:
        return None
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    if not m2 > 0:
        return None
    return float(np.mean((d * d) ** 2) / (m2 * m2))


def histogram_kurtosis(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """κ per row of bin ``counts`` [F, B+2] on ``edges`` [F, B+1] (each bin's mass at its
    midpoint, underflow / overflow at the grid's ends); NaN for an empty or constant row."""
    counts = np.asarray(counts, np.float64)
    points = np.concatenate([edges[:, :1], (edges[:, :-1] + edges[:, 1:]) / 2.0,
                             edges[:, -1:]], axis=1)
    n = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        mass = counts / n
        d = points - (mass * points).sum(axis=1, keepdims=True)
        m2 = (mass * d * d).sum(axis=1)
        return np.asarray((mass * d ** 4).sum(axis=1) / (m2 * m2))


def two_sided(z: np.ndarray) -> np.ndarray:
    """2 · P(Z > |z|) for a standard normal Z."""
    return np.asarray(2.0 * ndtr(-np.abs(z)))


def moment_stats(mean_w: np.ndarray, var_w: np.ndarray, n_w: np.ndarray, mean_r: np.ndarray,
                 var_r: np.ndarray, n_r: np.ndarray, kurt: np.ndarray) -> dict[str, np.ndarray]:
    """Both checks for F rows at once (arrays; variances with ddof = 1). Returns
    ``mean_shift``, ``mean_shift_p``, ``sd_ratio`` (the ratio sd_w / sd_r), ``sd_ratio_effect``
    and ``sd_ratio_p``; NaN where a side has fewer than 2 values or the reference does not
    vary.

    >>> s = moment_stats(np.array([0.1]), np.array([1.21]), np.array([2000]), np.array([0.0]),
    ...                  np.array([1.0]), np.array([100_000]), np.array([3.0]))
    >>> [round(float(s[k][0]), 4) for k in ("mean_shift", "sd_ratio_effect")]
    [0.1, 0.1]
    >>> bool(s["mean_shift_p"][0] < 1e-5), bool(s["sd_ratio_p"][0] < 1e-8)
    (True, True)
    """
    mean_w, var_w, mean_r, var_r = (np.asarray(a, np.float64)
                                    for a in (mean_w, var_w, mean_r, var_r))
    n_w, n_r = np.asarray(n_w, np.float64), np.asarray(n_r, np.float64)
    k = np.maximum(np.nan_to_num(np.asarray(kurt, np.float64), nan=MIN_KURTOSIS), MIN_KURTOSIS)
    ok = (n_w >= 2) & (n_r >= 2) & (var_r > 0) & np.isfinite(var_w) & np.isfinite(mean_w)
    nan = np.full(mean_w.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd_r = np.sqrt(var_r)
        inv = 1.0 / n_w + 1.0 / n_r
        shift = np.abs(mean_w - mean_r) / sd_r
        z_mean = shift / np.sqrt(inv)
        ratio = np.sqrt(var_w / var_r)
        log_ratio = np.log(var_w / var_r)
        z_var = log_ratio / np.sqrt((k - 1.0) * inv)
        sd_p = np.where(var_w > 0, two_sided(z_var), 0.0)
    return {"mean_shift": np.where(ok, shift, nan),
            "mean_shift_p": np.where(ok, two_sided(z_mean), nan),
            "sd_ratio": np.where(ok, ratio, nan),
            "sd_ratio_effect": np.where(ok, np.abs(ratio - 1.0), nan),
            "sd_ratio_p": np.where(ok, sd_p, nan)}
