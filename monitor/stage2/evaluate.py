"""A closed window + the reference profile -> a :class:`WindowReport`.

The statistics come from :func:`kernels.evaluate`; this module names them (family, feature),
adds the window's data-quality rates, and marks each check ``flagged`` with exactly the
verdict the alert policy will reach (one code path: :meth:`AlertPolicy.verdicts`), so a
report never says "flagged" where no alert could follow, or the other way round.

Which checks exist, their families, floors and switches come from the catalogue
(:mod:`kernels.catalogue`); the values from the config: the per-feature settings
(``features.rules``) first, then the family defaults of ``checks``. A check the catalogue
marks "reported only" (a group's bare selection rate, the ratio forms of the fairness
differences) never flags; its p-value still counts in the window's false-alarm budget. A
disabled check is left out of the report.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import deque
from typing import Any

from kernels.catalogue import CATALOGUE, CHECKS, DRIFT_FAMILIES, Check, floor_of
from monitor import __version__
from monitor.config import MonitorConfig
from monitor.records import CheckResult, WindowReport
from monitor.stage2.aggregate import ClosedWindow
from monitor.stage2.alerts import AlertPolicy
from monitor.stage2.rules import MIN_GROUP_EVENTS
from monitor.stage2.histograms import histograms
from monitor.stage2.quality import QualityChecks
from monitor.stage2.rules import CheckRule

INF = math.inf
log = logging.getLogger("streamdrift.evaluate")


def profile_model_version(profile) -> str:
    """The model version the profile was built for ("" for profiles built before it was
    recorded: ``metadata["model"]``, written by ``profile build``)."""
    m = (getattr(profile, "metadata", None) or {}).get("model") or {}
    return str(m.get("version", "")) if isinstance(m, dict) else ""


def model_mismatch(cfg: MonitorConfig, profile) -> str | None:
    """One line when the profile was built for another model version than the config's."""
    built = profile_model_version(profile)
    version = cfg.model.version if cfg.model is not None else "unversioned"
    if built and built != version:
        return (f"the reference profile was built for model version {built!r}, the config "
                f"monitors {version!r}: rebuild it (streamdrift profile build) from this "
                "version's training data, or set model.version")
    return None


def _rule(check: Check, floor: float, feature: str = "*", min_group: int = 0) -> CheckRule:
    crit = None if math.isinf(floor) or check.critical is None else check.critical * floor
    return CheckRule(family=check.family, check=check.name, feature=feature, warning=floor,
                     critical=crit, min_n=min_group if check.min_sample == "group" else 0,
                     require_test=check.test == "interval", relative=check.relative)


def _section_value(cfg: MonitorConfig, key: str) -> float:
    """``checks.<section>.<name>``, or for performance ``labels.checks.<name>``."""
    node: object = cfg if key.startswith("labels.") else cfg.checks
    for part in key.split("."):
        node = getattr(node, part)
    return node  # type: ignore[return-value]


def check_enabled(cfg: MonitorConfig, check: Check, feature: str | None = None) -> bool:
    """Whether ``check`` (of ``feature``, when per feature) runs: its family's switch, the
    catalogue row's own switch and the feature's rules. Disabled checks are left out of
    the report, so they neither flag nor spend the window's false-alarm budget."""
    c = cfg.checks
    on = {"numeric_drift": c.numeric.enabled, "categorical_drift": c.categorical.enabled,
          "prediction_drift": c.prediction.enabled, "fairness": c.fairness.enabled,
          "quality": c.quality.enabled,
          "performance": getattr(cfg, "labels", None) is not None}[check.family]
    if check.name == "unseen_rate":
        on = c.categorical.enabled
    if check.switch == "checks.categorical.chi2":
        on = on and c.categorical.chi2
    if feature is not None and feature in cfg.features.settings:
        s = cfg.feature(feature)
        if check.per_feature == "drift":
            on = s.drift_enabled and (check.name != "chi2" or s.chi2)
        elif check.per_feature == "quality":
            on = s.quality_enabled
    return on


def rules_from_config(cfg: MonitorConfig) -> list[CheckRule]:
    """The catalogue's rules with the config's floors: per-feature rules first (first match
    wins), then one rule per catalogue row for every other subject (the score, groups,
    window-wide quality)."""
    min_group = cfg.sensitive.min_group_events if cfg.sensitive else MIN_GROUP_EVENTS
    rules: list[CheckRule] = []
    for name in (*cfg.features.numeric, *cfg.features.categorical):
        s = cfg.feature(name)
        for check_name, value in s.floors.items():
            fam = "quality" if CATALOGUE.get(("quality", check_name)) else f"{s.kind}_drift"
            check = CATALOGUE[fam, check_name]
            floor = floor_of(check, value) if check_enabled(cfg, check, name) else INF
            rules.append(_rule(check, floor, name))
            rules.append(_rule(check, floor, f"{name}@*"))  # its slices (stage2/slices.py)
    for check in CHECKS:
        if not check.alerts or not check_enabled(cfg, check):
            rules.append(_rule(check, INF))
        elif check.floor_key is None:
            rules.append(_rule(check, check.default, min_group=min_group))
        else:
            rules.append(_rule(check, floor_of(check, _section_value(cfg, check.floor_key)),
                               min_group=min_group))
    return rules


def policy_from_config(cfg: MonitorConfig) -> AlertPolicy:
    a = cfg.alerts
    return AlertPolicy(family_level=cfg.checks.family_level,
                       correction="bh" if cfg.checks.correction.startswith("benjamini")
                       else cfg.checks.correction,
                       confirm_windows=a.confirm_windows, resolve_windows=a.resolve_windows,
                       repeat_interval_ms=a.repeat_interval_ms, rules=rules_from_config(cfg),
                       silences=a.silences, reopen_windows=a.reopen_windows,
                       versions_coexist=bool(cfg.model and cfg.model.version_field))


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class Evaluator:
    """``report(closed_window) -> WindowReport``.

    With ``reference.rolling_windows: N`` the reference is the merge (in window order) of the
    last N healthy windows (enough events, no drift flagged), once N of them have been seen;
    until then, and always for the quantile grids, the fixed profile. The report's
    ``profile_id`` then reads ``<profile id>+rolling:<first window start>-<last window end>``.
    The rolling history is part of stage 2's committed state (:mod:`monitor.stage2.state`), so
    a restart resumes with the same reference.
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
        self._enabled: dict[tuple[str, str, str], bool] = {}
        self.slices = None
        if getattr(cfg, "slices", None) is not None:
            from monitor.stage1.slices import SliceLayout
            from monitor.stage2.slices import SliceChecks

            sl = cfg.slices
            self.slices = SliceChecks(cfg, profile, SliceLayout.build(
                profile, sl.keys, sl.top_k, sl.bins), self.enabled)
        model = cfg.model
        self.model = model.name if model is not None else cfg.monitor
        self.model_version = model.version if model is not None else "unversioned"
        self.profile_model_version = profile_model_version(profile)
        if (mismatch := model_mismatch(cfg, profile)) is not None:
            log.warning("%s", mismatch)

    def enabled(self, family: str, check: str, feature: str) -> bool:
        key = (family, check, feature)
        if key not in self._enabled:
            row = CATALOGUE[family, check]  # a result outside the catalogue is a bug: KeyError
            self._enabled[key] = check_enabled(self.cfg, row, feature)
        return self._enabled[key]

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
            sens = cfg.sensitive
            for r in kernels.evaluate(
                    self.profile, w.sketch, min_events=cfg.windows.min_events,
                    reference=reference,
                    min_group_events=sens.min_group_events if sens else MIN_GROUP_EVENTS,
                    disparate_impact_threshold=cfg.checks.fairness.disparate_impact_min,
                    reference_group=sens.reference_group if sens else None,
                    fairness=cfg.checks.fairness.enabled):
                if not self.enabled(r.family, r.check, r.feature):
                    continue
                checks.append(CheckResult(
                    check=r.check, family=r.family, feature=r.feature,
                    statistic=_num(r.statistic), p_value=_num(r.p_value),
                    effect_size=_num(r.effect_size), n_window=int(r.n_window),
                    n_reference=int(r.n_reference), sufficient=bool(r.sufficient) and enough,
                    detail={**(getattr(r, "detail", None) or {}),
                            **({"histogram": hist[r.feature]} if r.check == "psi"
                               and r.feature in hist else {})}))
        quality, qchecks = self.quality.checks(w) if cfg.checks.quality.enabled else ({}, [])
        checks += qchecks
        if self.slices is not None and getattr(w.sketch, "slices", None) is not None:
            section, schecks = self.slices.checks(w.sketch.slices)
            quality = {**quality, "slices": section}
            checks += [c for c in schecks if c.family == "quality" or enough]
        report = WindowReport(
            monitor=cfg.monitor, window_start_ms=w.start_ms, window_end_ms=w.end_ms,
            profile_id=profile_id, events=w.events, late_events=w.late_events,
            bad_events=sum(w.bad.values()), partitions=w.partitions, quality=quality,
            checks=checks, insufficient_data=not enough, monitor_version=__version__,
            model=self.model, model_version=w.model_version or self.model_version,
            profile_model_version=self.profile_model_version,
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
