"""Fairness tests on per-group counts: a ratio of two selection rates (disparate impact)
and a difference of two proportions (demographic parity, TPR, FPR).

The ratio is judged by the score test of Farrington and Manning with the Miettinen-Nurminen
variance (the restricted maximum-likelihood rates under the null ratio), and its 95 % interval
by inverting that test. Unlike the log-ratio (Wald) test it stays calibrated in small groups
and is defined when a group has no positive decision at all: ratio 0, a p-value from the
counts, an interval [0, upper]. So the decision needs no minimum group size: a small group
gets a wide interval and a large p-value, and pages only when the gap is credible.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def _z_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _restricted(k1: int, n1: int, k2: int, n2: int, theta: float) -> tuple[float, float]:
    """The maximum-likelihood rates (p1, p2) under p1 = theta * p2 (Farrington-Manning)."""
    n = n1 + n2
    a = n * theta
    b = -(theta * n1 + k1 + n2 + theta * k2)
    c = k1 + k2
    disc = max(b * b - 4.0 * a * c, 0.0)
    p2 = (-b - math.sqrt(disc)) / (2.0 * a)
    p2 = min(max(p2, 0.0), 1.0)
    return min(theta * p2, 1.0), p2


def ratio_score_z(k1: int, n1: int, k2: int, n2: int, theta: float) -> float:
    """The score statistic of H0 ``p1 / p2 = theta`` (negative: the ratio is below theta).
    At ``theta = 1`` its square is Pearson's chi-square of the 2x2 table (times
    ``(n - 1) / n``, the Miettinen-Nurminen variance factor)."""
    p1h, p2h = k1 / n1, k2 / n2
    q1, q2 = _restricted(k1, n1, k2, n2, theta)
    n = n1 + n2
    var = (q1 * (1 - q1) / n1 + theta * theta * q2 * (1 - q2) / n2) * n / max(n - 1, 1)
    diff = p1h - theta * p2h
    if var <= 0.0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def _bound(k1: int, n1: int, k2: int, n2: int, target: float) -> float:
    """The theta where the score statistic crosses ``target`` (it falls as theta grows):
    bisection on log(theta) in [1e-9, 1e9]."""
    lo, hi = math.log(1e-9), math.log(1e9)
    if ratio_score_z(k1, n1, k2, n2, math.exp(lo)) < target:
        return 0.0
    if ratio_score_z(k1, n1, k2, n2, math.exp(hi)) > target:
        return math.inf
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if ratio_score_z(k1, n1, k2, n2, math.exp(mid)) > target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def ratio_test(k1: int, n1: int, k2: int, n2: int, threshold: float) -> tuple[float, float,
                                                                               float, float]:
    """ratio = (k1/n1) / (k2/n2) with group 1 the lower rate: one-sided score-test p of H0
    ratio >= threshold (small p: the ratio is credibly below it) and the 95 % score interval
    of the ratio. A group without positive decisions against one with some: ratio 0, its
    p-value and the interval [0, upper]. Neither group with one (or an empty group): no
    evidence, ratio 1 and p 1.

    >>> [round(x, 3) for x in ratio_test(40, 200, 100, 200, 0.8)]
    [0.4, 0.0, 0.292, 0.542]
    >>> r, p, lo, hi = ratio_test(0, 120, 60, 120, 0.8)
    >>> r, p < 1e-12, lo, round(hi, 3)
    (0.0, True, 0.0, 0.062)
    >>> ratio_test(0, 50, 0, 50, 0.8)
    (1.0, 1.0, 0.0, inf)
    """
    if n1 <= 0 or n2 <= 0 or k1 + k2 == 0:
        return 1.0, 1.0, 0.0, math.inf
    if k2 == 0:  # group 1 selects, group 2 never: no disparity against group 1
        return math.inf, 1.0, _bound(k1, n1, k2, n2, Z95), math.inf
    r = (k1 / n1) / (k2 / n2)
    z = ratio_score_z(k1, n1, k2, n2, threshold)
    p = 1.0 - _z_sf(z)  # P(Z <= z)
    lo = _bound(k1, n1, k2, n2, Z95)
    hi = _bound(k1, n1, k2, n2, -Z95)
    return r, p, lo, hi


def diff_test(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided two-proportion z-test of k1/n1 == k2/n2.

    >>> diff_test(50, 100, 50, 100)
    1.0
    """
    if n1 == 0 or n2 == 0:
        return None
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return 2.0 * _z_sf(abs(k1 / n1 - k2 / n2) / se)
