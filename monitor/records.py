"""Plain records that travel between the stages: check results, window reports, alerts.

Every record is a frozen dataclass that turns into a JSON-ready dict with ``to_dict()`` and
back with ``from_dict()``; the dict form is what ``schemas/`` describes.

>>> c = CheckResult(check="ks", family="numeric_drift", feature="f0", statistic=0.2,
...                 p_value=1e-9, effect_size=0.2, n_window=1000, n_reference=5000,
...                 sufficient=True, flagged=True)
>>> CheckResult.from_dict(c.to_dict()) == c
True
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: the version of a model whose config names none (``model.version`` absent)
UNVERSIONED = "unversioned"


def model_key(model: str, version: str) -> str:
    """The (model, version) pair as one string.

    >>> model_key("churn", "2026-11-30")
    'churn:2026-11-30'
    """
    return f"{model}:{version}"


@dataclass(frozen=True)
class CheckResult:
    """One statistic of one feature (or group, or the whole window) in one window.

    ``family`` is one of numeric_drift, categorical_drift, prediction_drift, quality,
    fairness, performance. ``effect_size`` is the figure the alert floor applies to (KS D, PSI,
    JS distance, a rate, |1 - ratio| ...); ``p_value`` is None where the check has none.
    ``sufficient`` is False when the window had too few events for the figure to mean
    anything; such a check never alerts. ``flagged`` is the evaluator's per-check verdict
    (effect size above its floor and, where there is a p-value, p below the family-corrected
    level); the alert policy may still hold it back (confirmation, silences).
    """

    check: str
    family: str
    feature: str
    statistic: float
    p_value: float | None
    effect_size: float
    n_window: int
    n_reference: int
    sufficient: bool
    flagged: bool = False
    severity: str = "warning"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CheckResult":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class WindowReport:
    """Everything streamdrift says about one closed event-time window of one monitor."""

    monitor: str
    window_start_ms: int
    window_end_ms: int
    profile_id: str
    events: int
    late_events: int
    bad_events: int
    partitions: list[int]
    quality: dict[str, Any]
    checks: list[CheckResult]
    insufficient_data: bool
    monitor_version: str
    sketch_digest: str = ""  # sha256 of the merged window sketch's bytes ("" when empty)
    model: str = ""                      # the model's name ("": the monitor's name)
    model_version: str = UNVERSIONED     # the config's ``model.version``
    profile_model_version: str = ""      # the version the reference profile was built for

    def __post_init__(self) -> None:
        if not self.model:   # reports written before model identity: the monitor's name
            object.__setattr__(self, "model", self.monitor)

    @property
    def key(self) -> str:
        return f"{self.monitor}:{self.window_start_ms}"

    @property
    def model_key(self) -> str:
        """``model:version``: what the status page, alert keys and triggers group by."""
        return model_key(self.model, self.model_version)

    @property
    def profile_mismatch(self) -> bool:
        """The profile names another version of the model than the one monitored."""
        return bool(self.profile_model_version) and \
            self.profile_model_version != self.model_version

    @property
    def flagged(self) -> list[CheckResult]:
        return [c for c in self.checks if c.flagged]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checks"] = [c.to_dict() for c in self.checks]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WindowReport":
        d = dict(d)
        d["checks"] = [CheckResult.from_dict(c) for c in d["checks"]]
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Silence:
    """Holds back notifications for the alert keys it matches, until ``until_ms``."""

    reason: str
    feature: str = "*"
    check: str = "*"
    family: str = "*"
    monitor: str = "*"
    until_ms: int | None = None
    created_by: str = ""

    def covers(self, *, feature: str, check: str, family: str, now_ms: int,
               monitor: str = "") -> bool:
        return ((self.until_ms is None or now_ms < self.until_ms)
                and fnmatch.fnmatchcase(feature, self.feature)
                and fnmatch.fnmatchcase(check, self.check)
                and fnmatch.fnmatchcase(family, self.family)
                and (not monitor or fnmatch.fnmatchcase(monitor, self.monitor)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Silence":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class AlertItem:
    """One alert key inside a notification, with the figures that justify it."""

    key: str
    check: str
    family: str
    feature: str
    severity: str
    statistic: float
    p_value: float | None
    effect_size: float
    floor: float
    level: float | None
    n_window: int
    n_reference: int
    since_window_start_ms: int   # first window of the bad run that made it fire
    bad_windows: int             # bad windows in a row when this item was sent
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    """One notification: the event on the alerts topic (``schemas/alert.schema.json``)."""

    alert_id: str
    kind: str                    # firing | update | resolved
    reason: str                  # new | repeat | escalated | resolved
    monitor: str
    window_start_ms: int
    window_end_ms: int
    profile_id: str
    monitor_version: str
    severity: str
    items: tuple[AlertItem, ...]
    thread_alert_id: str | None  # the firing notification this one replies to
    thread_resolved: bool        # every key of that thread is resolved now
    correction: str
    family_level: float
    tests_in_window: int
    model: str = ""                      # "" (alerts before model identity): the monitor
    model_version: str = UNVERSIONED

    def __post_init__(self) -> None:
        if not self.model:
            object.__setattr__(self, "model", self.monitor)

    @property
    def keys(self) -> list[str]:
        return [i.key for i in self.items]

    @property
    def model_key(self) -> str:
        return model_key(self.model, self.model_version)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["items"] = [asdict(i) for i in self.items]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Alert":
        d = dict(d)
        d["items"] = tuple(AlertItem(**i) for i in d["items"])
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
