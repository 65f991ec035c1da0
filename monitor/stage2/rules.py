"""What makes one check of one window bad: the rules (effect-size floors, minimum sample, the
need for a test) and the false-alarm budget shared by every test of the window.

>>> corrected_level([0.001, 0.2], 0.01, "bonferroni")
0.005
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, replace

from monitor.records import CheckResult


@dataclass(frozen=True)
class CheckRule:
    """Thresholds for the checks it matches (shell patterns on family, check and feature).

    ``warning`` and ``critical`` are effect-size floors (``critical=None``: never critical).
    ``min_n``: fewer events in the window (for fairness: in the smallest group) never alert.
    ``require_test``: alert only when the check carries a p-value, or a confidence interval
    ``detail["ci_low"]``/``detail["ci_high"]`` on the effect-size scale whose lower end is
    above the floor (the whole interval is bad). ``relative``: the floors are at least the
    reference's rate the check carries (``detail["reference_rate"]``), see
    :func:`effective_rule`.
    """

    family: str = "*"
    check: str = "*"
    feature: str = "*"
    warning: float = 0.1
    critical: float | None = None
    min_n: int = 0
    require_test: bool = False
    relative: bool = False

    def matches(self, c: CheckResult) -> bool:
        return (fnmatch.fnmatchcase(c.family, self.family)
                and fnmatch.fnmatchcase(c.check, self.check)
                and fnmatch.fnmatchcase(c.feature, self.feature))


#: A fairness comparison's smallest group needs this many events: a sanity floor only (the
#: score test and its interval decide at any group size; a small group has a wide interval)
MIN_GROUP_EVENTS = 10

#: Floors when the config says nothing (first match wins). Drift floors follow common practice
#: (PSI 0.1/0.25; KS D and JS distance 0.1/0.2); fairness: four-fifths rule on |1 - ratio|
#: with its test; quality: rates.
DEFAULT_RULES: tuple[CheckRule, ...] = (
    CheckRule(family="fairness", warning=0.2, critical=0.4, min_n=MIN_GROUP_EVENTS,
              require_test=True),
    CheckRule(check="psi", warning=0.1, critical=0.25),
    CheckRule(family="quality", warning=0.01, critical=0.1),
    CheckRule(family="performance", warning=0.05, critical=0.1),
    CheckRule(warning=0.1, critical=0.2),
)


def effective_rule(r: CheckRule, c: CheckResult) -> CheckRule:
    """``r`` for ``c``: a ``relative`` rule's warning floor is raised to the reference's rate
    (the rate must at least double and move by the configured floor), its critical floor by
    the same factor.

    >>> c = CheckResult(check="null_rate", family="quality", feature="x", statistic=0.09,
    ...                 p_value=0.0, effect_size=0.06, n_window=10_000, n_reference=1,
    ...                 sufficient=True, detail={"reference_rate": 0.03})
    >>> effective_rule(CheckRule(warning=0.01, critical=0.02, relative=True), c).warning
    0.03
    """
    base = (c.detail or {}).get("reference_rate") if r.relative else None
    if base is None or not base > r.warning:
        return r
    factor = base / r.warning
    return replace(r, warning=float(base),
                   critical=None if r.critical is None else r.critical * factor)


@dataclass(frozen=True)
class Verdict:
    """The policy's reading of one check in one window."""

    check: CheckResult
    rule: CheckRule
    bad: bool
    severity: str | None     # None when not bad
    level: float | None      # the corrected p-value threshold the check faced (None: no test)
    why: str                 # "bad", "insufficient", "below floor", "not significant", ...


def corrected_level(p_values: Sequence[float], level: float, correction: str) -> float:
    """The p-value at or below which a test of this window is significant.

    >>> corrected_level([0.001, 0.2, 0.3, 0.9], 0.01, "bonferroni")
    0.0025
    >>> corrected_level([0.001, 0.004, 0.3, 0.9], 0.01, "bh")  # 0.004 <= 2/4 * 0.01
    0.004
    >>> corrected_level([0.02, 0.3], 0.01, "bh")
    -1.0
    """
    m = len(p_values)
    if m == 0:
        return -1.0
    if correction == "bonferroni":
        return level / m
    if correction == "none":
        return level
    ps = sorted(p_values)
    for k in range(m, 0, -1):
        if ps[k - 1] <= k / m * level:
            return ps[k - 1]
    return -1.0
