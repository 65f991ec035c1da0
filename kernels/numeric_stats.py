"""Numeric drift: every statistic of F features' window bins against their reference bins,
in one numba pass over the bins (:func:`numeric_stats`). Plain numpy versions of each formula,
for the tests, are in ``tests/reference.py``; ``ORACLES`` there maps each to scipy.

On the binned data (the sketches' fine grid of reference quantiles):

- **KS** D = max over the grid edges of |F_window - F_reference| (both CDFs are exact at the
  edges). Against the exact two-sample D on the raw values the error is at most the largest
  probability mass either sample has in one finite bin (``d_upper`` bounds the exact D). The
  p-value is Kolmogorov's asymptotic law (:func:`ks_pvalue`).
- **Anderson-Darling** k-sample (k = 2) with the values replaced by their bin index: ties
  within a bin, midrank variant, Scholz & Stephens' normalisation and p-value interpolation
  as in ``scipy.stats.anderson_ksamp`` inside its table (p in [0.001, 0.25]); beyond the
  table's 0.001 end the asymptotic tail of the Anderson-Darling law,
  ``P(A2 > z) ~ sqrt(3) erfc(sqrt(z))`` (the largest eigenvalue 1/2 dominates; within 2 %
  of Marsaglia's series at z = 6 to 8), so the p-value keeps its resolution down to any
  false-alarm budget. Effect size: ``A2 / (n m / (n + m))``, an estimate of the
  Anderson-Darling distance (the integral of (F - G)^2 / (H (1 - H)) dH).
- **PSI** on the reference deciles (groups of n_bins / 10 fine bins; underflow joins the
  first decile, overflow the last), natural log, each proportion floored at 1e-4. Its test,
  and JS's, is Pearson's chi-square on the same 2 x 10 table (``decile_p``): PSI and JS are
  effect sizes, and a floor alone pages on sampling noise in small windows.
- **Wasserstein-1** between the two binned distributions, each bin's mass at its midpoint
  (underflow at the grid's low end, overflow at its high end); the effect size divides it by
  the reference's standard deviation on the same points; its test is KS's (both compare the
  two CDFs).
- **Jensen-Shannon distance**, base 2, on the reference deciles (no floor): on the fine grid
  the plug-in JS is biased upward by sampling noise.
- **Hellinger distance** on the reference deciles, ``sqrt(sum (sqrt p - sqrt q)^2 / 2)``
  (= ``sqrt(1 - sum sqrt(p q))`` without its cancellation), with the
  p-value of ``8 n m / (n + m) H^2`` against chi-square with (non-empty deciles - 1) degrees
  of freedom (the two-sample Pearson statistic's asymptotic equivalent).

NaN / inf values never reach these functions: the sketches counted them apart.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import chdtrc, erfc

from kernels.jit import kernel


def ks_pvalue(d: float | np.ndarray, n1: float | np.ndarray, n2: float | np.ndarray) -> float | np.ndarray:
    """Asymptotic two-sided p-value of the two-sample KS D: Kolmogorov's limiting law,
    ``kstwobign.sf(D * sqrt(n m / (n + m)))`` (``scipy.special.kolmogorov``; vectorized).

    scipy's ``ks_2samp(method="asymp")`` instead evaluates the exact one-sample law at
    ``n = round(n m / (n + m))`` (``kstwo.sf``), which takes 10-70 ms per call at window
    sizes (and more in the far tail) — too slow for 20 features in 2 ms. The two agree to a
    few percent of p where p matters (p > 1e-6, n m / (n + m) > 1000).

    >>> round(ks_pvalue(0.1, 1000, 1000), 7)
    9.08e-05
    """
    from scipy.special import kolmogorov

    n1 = np.asarray(n1, np.float64)
    n2 = np.asarray(n2, np.float64)
    p = kolmogorov(np.asarray(d, np.float64) * np.sqrt(n1 * n2 / (n1 + n2)))
    return float(p) if np.ndim(p) == 0 else p


def _harmonic(n: int) -> float:
    """H_n = Σ_{i<=n} 1/i (asymptotic series beyond 64 terms, error < 1e-17)."""
    if n < 64:
        return math.fsum(1.0 / i for i in range(1, n + 1))
    n2 = 1.0 / (n * n)
    return (math.log(n) + 0.5772156649015329 + 0.5 / n
            - n2 * (1 / 12 - n2 * (1 / 120 - n2 / 252)))


def _harmonic2(n: int) -> float:
    """Σ_{i<=n} 1/i² (asymptotic tail beyond 64 terms)."""
    if n < 64:
        return math.fsum(1.0 / (i * i) for i in range(1, n + 1))
    x = 1.0 / n
    tail = x - x * x / 2 + x**3 / 6 - x**5 / 30 + x**7 / 42 - x**9 / 30
    return math.pi**2 / 6 - tail


_H_SMALL = np.array([_harmonic(n) for n in range(64)])
_H2_SMALL = np.array([_harmonic2(n) for n in range(64)])


def _harmonic_many(n: np.ndarray) -> np.ndarray:
    """:func:`_harmonic` over an int64 array."""
    x = np.maximum(n, 1).astype(np.float64)
    x2 = 1.0 / (x * x)
    big = (np.log(x) + 0.5772156649015329 + 0.5 / x
           - x2 * (1 / 12 - x2 * (1 / 120 - x2 / 252)))
    if n.min() >= 64:  # the usual case: no small n to look up
        return np.asarray(big)
    return np.asarray(np.where(n < 64, _H_SMALL[np.minimum(n, 63)], big))


def _harmonic2_many(n: np.ndarray) -> np.ndarray:
    """:func:`_harmonic2` over an int64 array."""
    x = 1.0 / np.maximum(n, 1).astype(np.float64)
    tail = x - x * x / 2 + x**3 / 6 - x**5 / 30 + x**7 / 42 - x**9 / 30
    if n.min() >= 64:
        return np.asarray(math.pi**2 / 6 - tail)
    return np.asarray(np.where(n < 64, _H2_SMALL[np.minimum(n, 63)], math.pi**2 / 6 - tail))


def _ad_sigma_many(n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """:func:`_ad_sigma` over arrays of sample sizes (no per-feature Python)."""
    n1 = np.asarray(n1, np.int64)
    n2 = np.asarray(n2, np.int64)
    N = n1 + n2
    Nf = N.astype(np.float64)
    k = 2
    H = 1.0 / n1 + 1.0 / n2
    h, h_n = _harmonic_many(np.concatenate([N - 1, N])).reshape(2, -1)  # one pass for both
    g = _harmonic2_many(N) - (2.0 * h_n - 1.0 / Nf) / Nf
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * H
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * H - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * H + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    return np.asarray(np.sqrt((a * Nf**3 + b * Nf**2 + c * Nf + d)
                              / ((Nf - 1.0) * (Nf - 2.0) * (Nf - 3.0))))


_AD_SIG = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
_AD_CRIT = (np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
            + np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
            + np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154]))
_AD_FIT = np.polyfit(_AD_CRIT, np.log(_AD_SIG), 2)
_AD_CRIT_MIN, _AD_CRIT_MAX = float(_AD_CRIT.min()), float(_AD_CRIT.max())
_AD_SIG_MIN, _AD_SIG_MAX = float(_AD_SIG.min()), float(_AD_SIG.max())




def ad_pvalue(stat: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """p-values of normalised AD statistics ``stat`` (A2 = ``a2`` before normalising):
    scipy's interpolation inside its table, the asymptotic tail beyond it (see the module).

    >>> [float(f"{p:.3g}") for p in ad_pvalue(np.array([-2.0, 6.0, 12.0]),
    ...                                        np.array([0.0, 5.6, 10.1]))]
    [0.25, 0.00155, 1.21e-05]
    """
    inside = np.exp(np.polyval(_AD_FIT, np.clip(stat, _AD_CRIT_MIN, _AD_CRIT_MAX)))
    tail = np.minimum(_AD_SIG_MIN, math.sqrt(3.0) * erfc(np.sqrt(np.maximum(a2, 0.0))))
    return np.where(stat < _AD_CRIT_MIN, _AD_SIG_MAX,
                    np.where(stat > _AD_CRIT_MAX, tail, inside))


NUMERIC_COLUMNS = ("ks", "d_upper", "ad_a2kn", "psi", "wasserstein", "js", "max_bin_mass",
                   "ad_bins", "hellinger", "decile_bins", "decile_chi2")


class NumericReference(NamedTuple):
    """The reference side of :func:`numeric_stats`: everything that depends on the reference
    counts and the grids alone, so :func:`kernels.evaluate` builds it once per profile.
    Each array is what the kernel would otherwise recompute per window, with the same
    floating-point operations (the statistics do not change by a bit)."""

    counts: np.ndarray   # int64 [F, B+2] reference bin counts
    n: np.ndarray        # int64 [F] events per feature
    n_f: np.ndarray      # the same as float64
    mass: np.ndarray     # [F, B+2] counts / n
    cdf: np.ndarray      # [F, B+2] cumsum(counts) / n
    midrank: np.ndarray  # [F, B+2] cumsum(counts) - counts / 2 (AD)
    step: np.ndarray     # [F, B+1] distance between neighbouring bin points (Wasserstein)
    deciles: np.ndarray  # [F, 9] cumulative counts through each decile cut, float64
    cut: np.ndarray      # int64 [9] the fine bin that closes each of the first 9 deciles
    sd: np.ndarray       # [F] standard deviation of the reference on the bin points


def numeric_reference(cr: np.ndarray, edges: np.ndarray) -> NumericReference:
    """:class:`NumericReference` of reference counts ``cr`` [F, B+2] on ``edges`` [F, B+1]."""
    cr = np.ascontiguousarray(cr, np.int64)
    edges = np.asarray(edges, np.float64)
    n = cr.sum(axis=1)
    n_f = n.astype(np.float64)[:, None]
    cum = np.cumsum(cr, axis=1)
    points = np.concatenate([edges[:, :1], (edges[:, :-1] + edges[:, 1:]) / 2.0,
                             edges[:, -1:]], axis=1)
    cut = np.rint(np.arange(1, 10) * (edges.shape[1] - 1) / 10).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty row is never read
        mass, cdf = cr / n_f, cum / n_f
        mean = (mass * points).sum(axis=1, keepdims=True)
        sd = np.sqrt((mass * (points - mean) ** 2).sum(axis=1))
    return NumericReference(
        cr, n, np.ascontiguousarray(n_f[:, 0]), np.ascontiguousarray(mass),
        np.ascontiguousarray(cdf), np.ascontiguousarray(cum - cr / 2.0),
        np.ascontiguousarray(np.diff(points, axis=1)),
        np.ascontiguousarray(cum[:, cut], np.float64), cut, sd)


@kernel
def _numeric_stats(cw: np.ndarray, nw_all: np.ndarray, cr: np.ndarray, nr_all: np.ndarray,
                   pr_all: np.ndarray, fr_all: np.ndarray, mr_all: np.ndarray, step: np.ndarray,
                   dec_r: np.ndarray, cut: np.ndarray, out: np.ndarray) -> None:
    """Per feature row: the columns of NUMERIC_COLUMNS (same formulas as the per-statistic
    functions above, summed bin by bin in grid order; the reference-side terms come
    precomputed, see :class:`NumericReference`). Rows with an empty side are NaN."""
    n_feat, m = cw.shape
    n_cut = cut.shape[0]
    dec_w = np.zeros(n_cut)
    for f in range(n_feat):
        nw = nw_all[f]
        nr = nr_all[f]
        if nw == 0 or nr == 0:
            out[f, :] = np.nan
            continue
        big_n = nw + nr
        fw = 0.0
        fr = 0.0
        cum_w = 0
        d = 0.0
        d_up = 0.0
        w1 = 0.0
        kl = 0.0
        mass = 0.0
        a2 = 0.0
        l_before = 0.0
        kept = 0
        q = 0
        for k in range(m):
            a = cw[f, k]
            b = cr[f, k]
            pw = a / nw
            pr = pr_all[f, k]
            gap_left = fw - fr
            d_up = max(d_up, abs(gap_left + pw), abs(gap_left - pr))
            mass = max(mass, pw, pr)
            cum_w += a
            fw = cum_w / nw
            fr = fr_all[f, k]
            gap = abs(fw - fr)
            d = max(d, gap)
            while q < n_cut and cut[q] == k:
                dec_w[q] = cum_w
                q += 1
            if k < m - 1:
                w1 += gap * step[f, k]
            lj = float(a + b)
            if lj > 0:
                kept += 1
                bj = l_before + lj / 2.0
                den = bj * (big_n - bj) - big_n * lj / 4.0
                if den != 0:
                    mw = cum_w - a / 2.0
                    mr = mr_all[f, k]
                    a2 += lj / big_n * (big_n * mw - bj * nw) ** 2 / den / nw
                    a2 += lj / big_n * (big_n * mr - bj * nr) ** 2 / den / nr
                l_before += lj
        # PSI, JS and Hellinger on the deciles: cumulative counts through each cut bin,
        # then the total
        psi_v = 0.0
        h2 = 0.0
        chi = 0.0
        used = 0
        prev_w = 0.0
        prev_r = 0.0
        for q in range(n_cut + 1):
            cw_q = dec_w[q] if q < n_cut else nw
            cr_q = dec_r[f, q] if q < n_cut else nr
            raw_w = (cw_q - prev_w) / nw
            raw_r = (cr_q - prev_r) / nr
            mid = (raw_w + raw_r) / 2.0  # JS on the same deciles, no floor
            if raw_w > 0:
                kl += raw_w * np.log(raw_w / mid)
            if raw_r > 0:
                kl += raw_r * np.log(raw_r / mid)
            h2 += (np.sqrt(raw_w) - np.sqrt(raw_r)) ** 2
            pooled = (cw_q - prev_w + cr_q - prev_r) / big_n
            if pooled > 0:
                chi += (raw_w - raw_r) ** 2 / pooled
            if raw_w > 0 or raw_r > 0:
                used += 1
            pw = max(raw_w, 1e-4)
            pr = max(raw_r, 1e-4)
            psi_v += (pw - pr) * np.log(pw / pr)
            prev_w = cw_q
            prev_r = cr_q
        out[f, 0] = d
        out[f, 1] = max(d_up, d)
        out[f, 2] = a2 * (big_n - 1.0) / big_n
        out[f, 3] = psi_v
        out[f, 4] = w1
        out[f, 5] = np.sqrt(max(kl / 2.0, 0.0) / np.log(2.0))
        out[f, 6] = mass
        out[f, 7] = kept
        out[f, 8] = np.sqrt(h2 / 2.0)
        out[f, 9] = used
        out[f, 10] = chi * nw * nr / big_n


def numeric_stats(cw: np.ndarray, cr: np.ndarray | NumericReference,
                  edges: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every numeric statistic for F features at once: ``cw``, ``cr`` int64 [F, B+2] bin
    counts on ``edges`` [F, B+1] (or ``cr`` a prebuilt :class:`NumericReference` and no
    ``edges``). Returns NUMERIC_COLUMNS plus ``ks_p``, ``ad``, ``ad_p``, ``ad_distance``,
    ``hellinger_p``, ``decile_p`` (Pearson's chi-square test of the 2 x 10 decile table: the
    test of PSI and JS) and ``wasserstein_sd`` (arrays over features; NaN where a side is empty
    or AD is undefined) and the event counts ``n_window``, ``n_reference`` (int64).

    >>> e = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]])
    >>> s = numeric_stats(np.array([[0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0]]),
    ...                   np.array([[0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0]]), e)
    >>> float(s["ks"][0]), float(s["psi"][0]), float(s["js"][0])
    (0.0, 0.0, 0.0)
    """
    if isinstance(cr, NumericReference):
        ref = cr
    else:
        assert edges is not None, "reference counts need their edges"
        ref = numeric_reference(cr, edges)
    cw = np.ascontiguousarray(cw, np.int64)
    nw, nr = cw.sum(axis=1), ref.n
    out = np.empty((cw.shape[0], len(NUMERIC_COLUMNS)))
    _numeric_stats(cw, nw.astype(np.float64), ref.counts, ref.n_f, ref.mass, ref.cdf,
                   ref.midrank, ref.step, ref.deciles, ref.cut, out)
    res = {c: out[:, i] for i, c in enumerate(NUMERIC_COLUMNS)}
    ok = (nw > 0) & (nr > 0)
    if ok.all():  # the usual case: no empty row to mask
        res["ks_p"] = np.asarray(ks_pvalue(res["ks"], nw, nr))
    else:
        res["ks_p"] = np.where(ok, ks_pvalue(np.nan_to_num(res["ks"]), np.maximum(nw, 1),
                                             np.maximum(nr, 1)), np.nan)
    n_eff = np.where(ok, nw * nr / np.maximum(nw + nr, 1), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        res["decile_p"] = np.where(ok & (res["decile_bins"] >= 2), chdtrc(
            np.maximum(res["decile_bins"] - 1, 1), res["decile_chi2"]), np.nan)
        res["hellinger_p"] = np.where(ok & (res["decile_bins"] >= 2), chdtrc(
            np.maximum(res["decile_bins"] - 1, 1), 8.0 * n_eff * res["hellinger"] ** 2), np.nan)
        w1, sd = res["wasserstein"], ref.sd
        res["wasserstein_sd"] = np.where(sd > 0, w1 / np.where(sd > 0, sd, 1.0),
                                         np.where(w1 > 0, np.inf, 0.0))
    ad = np.full(cw.shape[0], np.nan)
    ad_p = np.full(cw.shape[0], np.nan)
    rows = np.flatnonzero(ok & (res["ad_bins"] >= 2) & (nw + nr > 3))
    if rows.size:  # every feature at once
        a2 = res["ad_a2kn"][rows]
        stat = (a2 - 1.0) / _ad_sigma_many(nw[rows], nr[rows])
        ad[rows] = stat
        ad_p[rows] = ad_pvalue(stat, a2)
    res["ad"], res["ad_p"] = ad, ad_p
    res["ad_distance"] = np.where(np.isfinite(ad), res["ad_a2kn"] / n_eff, np.nan)
    res["n_window"], res["n_reference"] = nw, nr
    return res


