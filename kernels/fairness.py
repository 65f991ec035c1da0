"""Fairness tests on per-group counts: a ratio of two selection rates (disparate impact)
and a difference of two proportions (demographic parity, TPR, FPR)."""

from __future__ import annotations

import math


def _z_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def ratio_test(k1: int, n1: int, k2: int, n2: int, threshold: float) -> tuple[float, float,
                                                                               float, float]:
    """ratio = (k1/n1) / (k2/n2) with group 1 the lower rate: one-sided p of H0 ratio >=
    threshold (small p: the ratio is credibly below it) and a 95% interval of the ratio.

    >>> [round(x, 3) for x in ratio_test(40, 200, 100, 200, 0.8)]
    [0.4, 0.0, 0.293, 0.545]
    """
    p1, p2 = k1 / n1, k2 / n2
    if p1 <= 0 or p2 <= 0:
        r = 0.0 if p2 > 0 else 1.0
        return r, (0.0 if r < threshold else 1.0), r, r
    r = p1 / p2
    se = math.sqrt((1 - p1) / (n1 * p1) + (1 - p2) / (n2 * p2))
    if se == 0:
        return r, (0.0 if r < threshold else 1.0), r, r
    z = (math.log(r) - math.log(threshold)) / se
    p = 1.0 - _z_sf(z)  # P(Z <= z)
    lo, hi = math.exp(math.log(r) - 1.96 * se), math.exp(math.log(r) + 1.96 * se)
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
