"""The predicted-class rate of a window against the reference's: the prediction family's
check of the model's decisions (its score's distribution is checked as a numeric column).

Predictions are binary here, as everywhere in the window sketch: the positive class
(``prediction.positive_class``, or ``score >= threshold``) against the rest. The counts come
from the window's group sketch (every row, whatever its group: column ``positive`` over
column ``predicted``), so this needs no new state.

The test is Pearson's chi-square on the 2 × 2 table (window, reference) × (positive, not),
without continuity correction — the pooled two-proportion z-test squared —, because the
reference rate is itself estimated from a finite sample. The effect size is the absolute
difference of the two rates. Empty sides (no prediction in the window or the reference)
give no statistic; a rate of 0 or 1 on both sides gives p = 1.

>>> r = class_rate(300, 1000, 2000, 10000)
>>> round(r.window_rate, 3), round(r.reference_rate, 3), round(r.effect, 3), r.p_value < 1e-10
(0.3, 0.2, 0.1, True)
>>> class_rate(0, 0, 5, 10) is None
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ClassRate:
    window_rate: float
    reference_rate: float
    chi2: float
    p_value: float

    @property
    def effect(self) -> float:
        """|window rate - reference rate|: what the floor applies to."""
        return abs(self.window_rate - self.reference_rate)


def class_rate(k_w: int, n_w: int, k_r: int, n_r: int) -> ClassRate | None:
    """Positive predictions ``k`` out of ``n`` predictions, in the window (``_w``) and the
    reference (``_r``); None when either side has no prediction."""
    if n_w <= 0 or n_r <= 0:
        return None
    pw, pr = k_w / n_w, k_r / n_r
    pooled = (k_w + k_r) / (n_w + n_r)
    var = pooled * (1.0 - pooled) * (1.0 / n_w + 1.0 / n_r)
    if var <= 0.0:
        return ClassRate(pw, pr, 0.0, 1.0)
    chi2 = (pw - pr) ** 2 / var
    return ClassRate(pw, pr, chi2, math.erfc(math.sqrt(chi2 / 2.0)))  # chi2 sf, 1 df
