"""A closed window + the reference profile -> a :class:`WindowReport`.

The statistics come from :func:`kernels.evaluate`; this module names them (family, feature),
adds the window's data-quality rates, and marks each check ``flagged`` with exactly the
verdict the alert policy will reach (one code path: :meth:`AlertPolicy.verdicts`), so a
report never says "flagged" where no alert could follow, or the other way round.

Floors come from the config: the per-feature settings (``features.rules``) first, then the
family defaults of ``checks``. A check without a configured floor (Anderson-Darling, a
group's bare selection rate, Wasserstein unless ``wasserstein_floor`` is set) is reported
but never flags; its p-value still counts in the window's false-alarm budget.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from typing import Any

from monitor import __version__
from monitor.stage2.aggregate import ClosedWindow
from monitor.stage2.alerts import AlertPolicy, CheckRule
from monitor.config import MonitorConfig
from monitor.stage2.histograms import histograms
from monitor.stage2.quality import QualityChecks
from monitor.records import CheckResult, WindowReport

INF = math.inf
FAIRNESS_CHECKS = {"selection_rate", "disparate_impact", "disparate_impact_ref",
                   "demographic_parity_diff", "equal_opportunity_diff", "equal_opportunity_ratio",
                   "equalized_odds_diff", "equalized_odds_ratio"}


def _critical(warning: float) -> float | None:
    return None if math.isinf(warning) else 2.0 * warning


def _rule(family: str, check: str, warning: float, **kw) -> CheckRule:
    """A rule whose critical floor is twice its warning floor."""
    return CheckRule(family=family, check=check, warning=warning,
                     critical=_critical(warning), **kw)


def rules_from_config(cfg: MonitorConfig) -> list[CheckRule]:
    """Per-feature rules first (first match wins), then family defaults."""
    c = cfg.checks
    rules: list[CheckRule] = []
    for name in cfg.features.numeric:
        s = cfg.feature(name)
        if not s.drift_enabled:
            rules.append(CheckRule(family="numeric_drift", feature=name, warning=INF))
            continue
        for check, floor in (("ks", s.ks_floor if s.ks_floor is not None else c.numeric.ks_floor),
                             ("psi", s.psi_floor), ("js", s.js_floor),
                             ("wasserstein", s.wasserstein_floor)):
            rules.append(_rule("numeric_drift", check, INF if floor is None else float(floor),
                               feature=name))
    for name in cfg.features.categorical:
        s = cfg.feature(name)
        if not s.drift_enabled:
            rules.append(CheckRule(family="categorical_drift", feature=name, warning=INF))
            continue
        unseen = s.unseen_rate_floor if s.unseen_rate_floor is not None \
            else c.categorical.unseen_rate_floor
        for check, floor in (("psi", s.psi_floor), ("js", s.js_floor), ("chi2", s.js_floor)):
            rules.append(_rule("categorical_drift", check, float(floor), feature=name))
        rules.append(_rule("quality", "unseen_rate", float(unseen), feature=name))
    for name in (*cfg.features.numeric, *cfg.features.categorical):
        s = cfg.feature(name)
        if not s.quality_enabled:
            rules.append(CheckRule(family="quality", feature=name, warning=INF))
            continue
        for check, floor in (("null_rate", s.null_rate_max),
                             ("type_error_rate", s.type_error_rate_max),
                             ("nonfinite_rate", s.nonfinite_rate_max),
                             ("out_of_range_rate", s.out_of_range_rate_max),
                             ("outlier_rate", s.outlier_rate_max)):
            rules.append(_rule("quality", check, float(floor), feature=name))
    n, f, q = c.prediction, c.fairness, c.quality
    min_group = cfg.sensitive.min_group_events if cfg.sensitive else 200
    di = 1.0 - f.disparate_impact_min
    rules += [
        _rule("prediction_drift", "ks", n.ks_floor),
        _rule("prediction_drift", "psi", n.psi_floor),
        _rule("prediction_drift", "js", n.js_floor),
        _rule("fairness", "disparate_impact*", di, min_n=min_group, require_test=True),
        _rule("fairness", "equalized_odds_diff", f.equalized_odds_max, min_n=min_group,
              require_test=True),
        _rule("fairness", "equal_opportunity_diff", f.equal_opportunity_max, min_n=min_group,
              require_test=True),
        CheckRule(family="fairness", warning=INF),
        _rule("quality", "bad_event_rate", q.bad_event_rate_max),
        _rule("quality", "late_event_rate", q.late_event_rate_max),
        _rule("quality", "duplicate_rate", q.duplicate_rate_max),
        _rule("quality", "schema_change", q.missing_rate_max),
        _rule("quality", "row_outlier_rate", q.row_outlier_rate_max),
        _rule("quality", "stale_event_rate", q.stale_event_rate_max),
        _rule("quality", "volume_drop", q.volume_drop_max),
        _rule("quality", "volume_spike", q.volume_spike_max),
        CheckRule(family="quality", check="no_data", warning=0.5, critical=1.0),
        CheckRule(family="quality", check="consumer_lag", warning=1.0, critical=10.0),
        CheckRule(family="quality", warning=INF),
        _rule("*", "ks", c.numeric.ks_floor),
        _rule("*", "psi", c.numeric.psi_floor),
        _rule("*", "js", c.numeric.js_floor),
        CheckRule(warning=INF),  # ad, wasserstein, anything else: reported, never flagged
    ]
    return rules


def policy_from_config(cfg: MonitorConfig) -> AlertPolicy:
    a = cfg.alerts
    return AlertPolicy(family_level=cfg.checks.family_level,
                       correction="bh" if cfg.checks.correction.startswith("benjamini")
                       else cfg.checks.correction,
                       confirm_windows=a.confirm_windows, resolve_windows=a.resolve_windows,
                       repeat_interval_ms=a.repeat_interval_ms, rules=rules_from_config(cfg),
                       silences=a.silences)


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


DRIFT_FAMILIES = ("numeric_drift", "categorical_drift", "prediction_drift")


class Evaluator:
    """``report(closed_window) -> WindowReport``.

    With ``reference.rolling_windows: N`` the reference is the merge (in window order) of the
    last N healthy windows (enough events, no drift flagged), once N of them have been seen;
    until then, and always for the quantile grids, the fixed profile. The report's
    ``profile_id`` then reads ``<profile id>+rolling:<first window start>-<last window end>``.
    The rolling history lives in memory: after a restart it refills over N windows.
    """

    def __init__(self, cfg: MonitorConfig, profile, policy: AlertPolicy | None = None) -> None:
        self.cfg = cfg
        self.profile = profile
        self.policy = policy or policy_from_config(cfg)
        self.profile_id = profile.profile_id
        n = cfg.reference.rolling_windows
        self.rolling: deque = deque(maxlen=n) if n > 0 else deque(maxlen=0)
        self.numeric = set(cfg.features.numeric)
        self.categorical = set(cfg.features.categorical)
        self.quality = QualityChecks(cfg, profile)

    def family_of(self, check: str, feature: str) -> str:
        if check in FAIRNESS_CHECKS:
            return "fairness"
        if check == "unseen_rate":  # a category outside the reference's domain: quality
            return "quality"
        if feature in self.numeric:
            return "numeric_drift"
        if feature in self.categorical:
            return "categorical_drift"
        return "prediction_drift"

    def report(self, w: ClosedWindow) -> WindowReport:
        import kernels

        cfg = self.cfg
        enough = w.events >= cfg.windows.min_events
        checks: list[CheckResult] = []
        reference, profile_id = None, self.profile_id
        if self.rolling.maxlen and len(self.rolling) == self.rolling.maxlen:
            reference = self.rolling[0][2]
            for _, _, sk in list(self.rolling)[1:]:
                reference = reference.merge(sk)
            profile_id = f"{self.profile_id}+rolling:{self.rolling[0][0]}-{self.rolling[-1][1]}"
        if w.sketch is not None:
            hist = histograms(self.profile, w.sketch, reference)  # shown on PSI's detail
            for r in kernels.evaluate(self.profile, w.sketch, min_events=cfg.windows.min_events,
                                      reference=reference):
                checks.append(CheckResult(
                    check=r.check, family=self.family_of(r.check, r.feature), feature=r.feature,
                    statistic=_num(r.statistic), p_value=_num(r.p_value),
                    effect_size=_num(r.effect_size), n_window=int(r.n_window),
                    n_reference=int(r.n_reference), sufficient=bool(r.sufficient) and enough,
                    detail={**(getattr(r, "detail", None) or {}),
                            **({"histogram": hist[r.feature]} if r.check == "psi"
                               and r.feature in hist else {})}))
        quality, qchecks = self.quality.checks(w) if cfg.checks.quality.enabled else ({}, [])
        checks += qchecks
        report = WindowReport(
            monitor=cfg.monitor, window_start_ms=w.start_ms, window_end_ms=w.end_ms,
            profile_id=profile_id, events=w.events, late_events=w.late_events,
            bad_events=sum(w.bad.values()), partitions=w.partitions, quality=quality,
            checks=checks, insufficient_data=not enough, monitor_version=__version__,
            sketch_digest=hashlib.sha256(w.sketch.to_bytes()).hexdigest()
            if w.sketch is not None else "")
        verdicts = self.policy.verdicts(report)
        flagged = [CheckResult(**{**c.to_dict(), "flagged": v.bad,
                                  "severity": v.severity or "info"})
                   for c, v in zip(report.checks, verdicts)]
        drifted = any(c.flagged and c.family in (*DRIFT_FAMILIES, "quality") for c in flagged)
        if self.rolling.maxlen and w.sketch is not None and enough and not drifted:
            self.rolling.append((w.start_ms, w.end_ms, w.sketch))
        return WindowReport(**{**report.__dict__, "checks": flagged})
