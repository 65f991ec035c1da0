"""Categorical drift: a window's category counts against the reference's (the reference
categories, then "unseen"). Plain numpy versions for the tests are in ``tests/reference.py``.

- **chi-square** (no continuity correction) on the 2 x M table of window and reference counts
  (empty columns dropped); effect size Cohen's w of the window against the reference,
  ``sqrt(chi2 / (n m / (n + m)))`` ~ ``sqrt(sum (p - q)^2 / q)``, which unlike Cramér's V of
  the pooled table does not shrink as the reference grows;
- **PSI** (natural log, each share floored at 1e-4) and **Jensen-Shannon distance** (base 2)
  on the same columns;
- **Hellinger distance** ``sqrt(sum (sqrt p - sqrt q)^2 / 2)`` with the p-value of
  ``8 n m / (n + m) H^2`` against chi-square with (non-empty columns - 1) degrees of freedom.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import chdtrc

PSI_FLOOR = 1e-4


def chi2_test(cw: np.ndarray, cr: np.ndarray) -> tuple[float, float | None, float]:
    """(statistic, p-value, Cohen's w) of the 2 x M table; p is None with < 2 columns.

    >>> chi2_test(np.array([10, 0]), np.array([0, 10]))[2]
    2.0
    """
    t = np.vstack([cw, cr]).astype(np.float64)
    t = t[:, t.sum(axis=0) > 0]
    if t.shape[1] < 2:
        return 0.0, None, 0.0
    rows = t.sum(axis=1, keepdims=True)
    n = rows.sum()
    e = rows * t.sum(axis=0, keepdims=True) / n
    stat = float(((t - e) ** 2 / e).sum())
    n_eff = float(rows[0, 0] * rows[1, 0] / n)
    return stat, float(chdtrc(t.shape[1] - 1, stat)), math.sqrt(stat / n_eff)


class CategoricalReference(NamedTuple):
    """The reference side of :func:`categorical_stats` (built once per profile)."""

    counts: np.ndarray   # int64 [M] reference categories, then "unseen"
    n: int               # their sum
    share: np.ndarray    # counts / n
    floored: np.ndarray  # max(share, PSI_FLOOR)
    root: np.ndarray     # sqrt(share) (Hellinger)


def categorical_reference(cr: np.ndarray) -> CategoricalReference:
    """:class:`CategoricalReference` of reference counts ``cr`` (all zero: shares zero)."""
    cr = np.asarray(cr, np.int64)
    share = cr / max(cr.sum(), 1)
    return CategoricalReference(cr, int(cr.sum()), share, np.maximum(share, PSI_FLOOR),
                                np.sqrt(share))


class CategoricalStats(NamedTuple):
    chi2: float
    chi2_p: float | None
    cohens_w: float
    psi: float
    js: float
    hellinger: float
    hellinger_p: float | None


def categorical_stats(cw: np.ndarray, ref: CategoricalReference) -> CategoricalStats:
    """Every categorical statistic of window counts ``cw`` (not all zero) against ``ref``,
    sharing the window's proportions and the reference's.

    >>> s = categorical_stats(np.array([5, 5, 0]), categorical_reference(np.array([5, 5, 0])))
    >>> s.chi2, s.psi, s.js, s.hellinger
    (0.0, 0.0, 0.0, 0.0)
    """
    nw = cw.sum()
    p = cw / nw
    pw = np.maximum(p, PSI_FLOOR)
    ps = float(np.sum((pw - ref.floored) * np.log(pw / ref.floored)))
    q = ref.share
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    js = float(math.sqrt(max((kl_p + kl_q) / 2.0, 0.0) / math.log(2.0)))
    h = math.sqrt(float(np.sum((np.sqrt(p) - ref.root) ** 2)) / 2.0)
    used = int(((cw + ref.counts) > 0).sum())
    h_p = float(chdtrc(used - 1, 8.0 * nw * ref.n / (nw + ref.n) * h * h)) if used >= 2 else None
    stat, pv, v = chi2_test(cw, ref.counts)
    return CategoricalStats(stat, pv, v, ps, js, h, h_p)
