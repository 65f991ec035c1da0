"""The alert policy: WindowReports in, Alert events out. Plain Python, no broker.

Per window of one monitor the policy

1. decides per check whether it is *bad*: the effect size is at or above its rule's floor
   (every p-value is tiny at 100k events, so significance alone never alerts) and, where the
   check has a p-value, the p-value survives one false-alarm budget shared by every test of
   the window (``family_level`` split by Bonferroni, or Benjamini-Hochberg). Fairness checks
   (``require_test`` rules) alert only with a test or a confidence interval beside the ratio
   and at least ``min_n`` events in the smallest group;
2. fires an alert key ``(monitor, model:version, check, feature)`` after ``confirm_windows``
   bad windows in a row, resolves it after ``resolve_windows`` healthy windows in a row;
   windows without enough data (or without the check) neither confirm nor resolve. No
   flapping: a resolved key is *held* for ``reopen_windows`` more healthy windows before
   ``resolved`` is sent; if it is confirmed bad again meanwhile it goes on firing in the
   same thread (no second ``firing``, no ``resolved`` / ``firing`` pair for one persistent
   fault near the detection limit);
3. groups what happened in the window into few notifications: one ``firing`` event for every
   key that started firing, one ``update`` event per thread for keys that escalated
   (warning -> critical) or whose ``repeat_interval_ms`` elapsed (window time), one
   ``resolved`` event per thread. Silenced keys fire silently and are announced when the
   silence ends while they still fire; a key that resolves while silenced says nothing.

Model identity: every key names the model and version of the report
(``monitor/model:version/check/feature``), so a new version never continues the old
version's runs. When a monitor's reports switch to another (model, version), the keys of the
previous one are closed: the firing ones get a ``resolved`` notification that names the old
version (``reason: superseded``) and their state is dropped. With ``versions_coexist``
(``model.version_field``: one stream carries several versions, each reported on its own) a
version is closed that way only once it has sent no report for ``resolve_windows`` windows
while another version of the monitor reported; each version's windows are ordered on their
own, and a ``firing`` id names the version.

Alert ids are derived from (monitor, window, kind, thread), so replaying the same reports
after a crash yields the same ids, and the sinks' exactly-once-per-id holds end to end.
Reports of a window not after the last one seen are ignored (replays are harmless).

>>> from monitor.records import CheckResult, WindowReport
>>> def report(i, d):
...     c = CheckResult(check="ks", family="numeric_drift", feature="f0", statistic=d,
...                     p_value=1e-12 if d > 0.1 else 0.5, effect_size=d, n_window=5000,
...                     n_reference=50000, sufficient=True)
...     return WindowReport("m", i * 60_000, (i + 1) * 60_000, "p1", 5000, 0, 0, [0], {},
...                         [c], False, "0.1.0")
>>> policy = AlertPolicy(confirm_windows=2, resolve_windows=2)
>>> [[a.kind for a in policy.update(report(i, d)).alerts]
...  for i, d in enumerate([0.3, 0.3, 0.3, 0.0, 0.0])]
[[], ['firing'], [], [], ['resolved']]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from monitor.errors import ConfigError
from monitor.records import Alert, AlertItem, CheckResult, WindowReport
from monitor.stage2.alert_versions import VersionRetirement, _alert_id, alert_key
from monitor.stage2.explain import explain
from monitor.stage2.rules import (DEFAULT_RULES, CheckRule, Verdict, corrected_level,
                                  effective_rule)

SEVERITIES = ("warning", "critical")
KINDS = ("firing", "update", "resolved")
CORRECTIONS = ("bonferroni", "bh", "none")


class SilenceLike(Protocol):
    def covers(self, *, feature: str, check: str, family: str, now_ms: int,
               monitor: str = "") -> bool: ...


@dataclass
class _KeyState:
    bad_run: int = 0
    good_run: int = 0
    run_start_ms: int = 0
    firing: bool = False
    notified: bool = False
    thread: str | None = None
    severity: str = "warning"
    notified_severity: str | None = None
    last_notified_end_ms: int = 0
    last: AlertItem | None = None
    holding: bool = False  # healthy long enough to resolve, held for reopen_windows more


class AlertPolicy(VersionRetirement):
    """Turns each monitor's stream of WindowReports into Alert events.

    ``update(report)`` returns the policy; ``alerts`` holds what the last report produced and
    ``firing`` the keys firing now. ``repeat_interval_ms`` is measured in window (event) time,
    so a replay produces the same notifications as the live run.
    """

    def __init__(self, family_level: float = 0.01, correction: str = "bonferroni",
                 confirm_windows: int = 2, resolve_windows: int = 2,
                 repeat_interval_ms: int = 3_600_000,
                 rules: Iterable[CheckRule] = DEFAULT_RULES,
                 silences: Iterable[SilenceLike] = (), reopen_windows: int = 0,
                 versions_coexist: bool = False) -> None:
        if not 0 < family_level < 1:
            raise ConfigError("checks.family_level", f"expected 0 < level < 1, got {family_level}")
        if correction not in CORRECTIONS:
            raise ConfigError("checks.correction",
                              f"expected one of {', '.join(CORRECTIONS)}, got {correction!r}")
        if confirm_windows < 1 or resolve_windows < 1:
            raise ConfigError("alerts.confirm_windows",
                              "confirm_windows and resolve_windows must be at least 1")
        if reopen_windows < 0:
            raise ConfigError("alerts.reopen_windows", f"expected >= 0, got {reopen_windows}")
        self.family_level = family_level
        self.correction = correction
        self.confirm_windows = confirm_windows
        self.resolve_windows = resolve_windows
        self.reopen_windows = reopen_windows
        self.repeat_interval_ms = repeat_interval_ms
        self.versions_coexist = versions_coexist
        self.rules = tuple(rules) + (CheckRule(),)
        self._rule_cache: dict[tuple[str, str, str], CheckRule] = {}
        self._rules_of_cache = self.rules
        self.silences = tuple(silences)
        self._keys: dict[str, _KeyState] = {}
        self._last_window: dict[str, int] = {}
        self._model: dict[str, str] = {}    # monitor -> model:version of its last report
        self._alerts: list[Alert] = []

    def __repr__(self) -> str:
        return (f"AlertPolicy(family_level={self.family_level}, correction={self.correction!r}, "
                f"confirm_windows={self.confirm_windows}, resolve_windows={self.resolve_windows},"
                f" reopen_windows={self.reopen_windows},"
                f" repeat_interval_ms={self.repeat_interval_ms}, rules=<{len(self.rules)}>, "
                f"versions_coexist={self.versions_coexist}, "
                f"silences=<{len(self.silences)}>)")

    @property
    def alerts(self) -> list[Alert]:
        """The notifications produced by the last ``update``."""
        return list(self._alerts)

    @property
    def firing(self) -> dict[str, str]:
        """Keys firing now -> severity."""
        return {k: s.severity for k, s in self._keys.items() if s.firing}

    def set_silences(self, silences: Iterable[SilenceLike]) -> None:
        """Replace the silences (the CLI's file changed)."""
        self.silences = tuple(silences)

    def rule_for(self, c: CheckResult) -> CheckRule:
        """The first rule matching the check, remembered per (family, check, feature)."""
        if self._rules_of_cache is not self.rules:
            self._rule_cache, self._rules_of_cache = {}, self.rules
        key = (c.family, c.check, c.feature)
        if (r := self._rule_cache.get(key)) is None:
            r = self._rule_cache[key] = next(r for r in self.rules if r.matches(c))
        return r

    # -- one window --------------------------------------------------------------------

    def verdicts(self, report: WindowReport) -> list[Verdict]:
        """Per check: bad or not, at which severity, against which corrected level.
        Quality checks judge their own sufficiency (an empty window is the silent-producer
        alert); every other check also needs a window with enough events."""
        rules = [effective_rule(self.rule_for(c), c) for c in report.checks]
        usable = [(c.family == "quality" or not report.insufficient_data) and c.sufficient
                  and c.n_window >= r.min_n and _finite(c.effect_size)
                  for c, r in zip(report.checks, rules)]
        tested = [c.p_value for c, u in zip(report.checks, usable)
                  if u and c.p_value is not None and _finite(c.p_value)]
        level = corrected_level(tested, self.family_level, self.correction)
        out = []
        for c, r, u in zip(report.checks, rules, usable):
            out.append(self._verdict(c, r, u, level))
        return explain(out)

    def _verdict(self, c: CheckResult, r: CheckRule, usable: bool, level: float) -> Verdict:
        def no(why: str, lvl: float | None = None) -> Verdict:
            return Verdict(c, r, False, None, lvl, why)

        if not usable:
            return no("insufficient")
        has_p = c.p_value is not None and _finite(c.p_value)
        if c.effect_size < r.warning:
            return no("below floor", level if has_p else None)
        if has_p:
            if c.p_value > level:  # type: ignore[operator]
                return no("not significant", level)
        elif r.require_test:
            lo = c.detail.get("ci_low") if isinstance(c.detail, dict) else None
            if lo is None or not _finite(lo):
                return no("no test")
            if lo < r.warning:
                return no("interval reaches the floor")
        sev = "critical" if (r.critical is not None and c.effect_size >= r.critical) else "warning"
        if c.severity == "critical":
            sev = "critical"
        return Verdict(c, r, True, sev, level if has_p else None, "bad")

    def update(self, report: WindowReport) -> "AlertPolicy":
        """Absorb one window of one monitor; read the result from ``alerts``."""
        self._alerts = []
        # per version: several versions report the same window (versions_coexist)
        mine = f"{report.monitor}/{report.model_key}"
        last = self._last_window.get(mine, self._last_window.get(report.monitor))
        if last is not None and report.window_start_ms <= last:
            return self
        self._last_window.pop(report.monitor, None)  # state written before versions
        self._last_window[mine] = report.window_start_ms
        superseded = self._retire(report) if self.versions_coexist else self._supersede(report)
        verdicts = self.verdicts(report)
        tests = sum(1 for v in verdicts if v.level is not None)
        new: list[AlertItem] = []
        updates: dict[str, list[tuple[str, AlertItem]]] = {}
        resolved: dict[str, list[AlertItem]] = {}
        seen: set[str] = set()
        for v in verdicts:
            c = v.check
            key = alert_key(report.monitor, c.check, c.feature, report.model_key)
            if key in seen or v.why == "insufficient":
                continue
            seen.add(key)
            st = self._keys.setdefault(key, _KeyState())
            if v.bad:
                if st.bad_run == 0 and not st.holding:
                    st.run_start_ms = report.window_start_ms
                st.bad_run += 1
                st.good_run = 0
                item = self._item(key, v, st)
                st.last = item
                if st.holding and st.bad_run >= self.confirm_windows:
                    # bad again before the resolution went out: the same alert, same thread
                    st.firing, st.holding, st.severity = True, False, item.severity
                elif not st.firing and st.bad_run >= self.confirm_windows:
                    st.firing, st.severity, st.notified = True, item.severity, False
                elif st.firing:
                    st.severity = item.severity
            else:
                st.good_run += 1
                st.bad_run = 0
                if st.firing and st.good_run >= self.resolve_windows:
                    st.firing, st.holding = False, True
                if st.holding and st.good_run >= self.resolve_windows + self.reopen_windows:
                    st.holding = False
                    if st.notified:
                        resolved.setdefault(st.thread or "", []).append(
                            replace(self._item(key, v, st), severity=st.severity,
                                    since_window_start_ms=st.last.since_window_start_ms
                                    if st.last else st.run_start_ms, bad_windows=0))
                    st.notified, st.notified_severity, st.thread = False, None, None
        # notifications for keys firing now (new, silence ended, escalated, repeat)
        now = report.window_end_ms
        prefix = f"{report.monitor}/{report.model_key}/"
        for key, st in self._keys.items():
            if not st.firing or not key.startswith(prefix) or st.last is None:
                continue
            if self._silenced(st.last, report.monitor, now):
                continue
            if not st.notified:
                new.append(st.last)
            elif (st.notified_severity == "warning" and st.severity == "critical"):
                updates.setdefault(st.thread or "", []).append(("escalated", st.last))
            elif now - st.last_notified_end_ms >= self.repeat_interval_ms:
                updates.setdefault(st.thread or "", []).append(("repeat", st.last))
        self._alerts = superseded + self._emit(report, tests, new, updates, resolved)
        return self

    # -- helpers -----------------------------------------------------------------------

    def _item(self, key: str, v: Verdict, st: _KeyState) -> AlertItem:
        c = v.check
        detail = {k: v for k, v in (c.detail or {}).items()
                  if isinstance(v, (int, float, str, bool)) or v is None}
        return AlertItem(key=key, check=c.check, family=c.family, feature=c.feature,
                         severity=v.severity or "warning", statistic=float(c.statistic),
                         p_value=None if c.p_value is None else float(c.p_value),
                         effect_size=float(c.effect_size), floor=float(v.rule.warning),
                         level=v.level, n_window=int(c.n_window), n_reference=int(c.n_reference),
                         since_window_start_ms=st.run_start_ms, bad_windows=st.bad_run,
                         detail=detail)

    def _silenced(self, item: AlertItem, monitor: str, now_ms: int) -> bool:
        return any(s.covers(feature=item.feature, check=item.check, family=item.family,
                            now_ms=now_ms, monitor=monitor) for s in self.silences)

    def _emit(self, report: WindowReport, tests: int, new: list[AlertItem],
              updates: dict[str, list[tuple[str, AlertItem]]],
              resolved: dict[str, list[AlertItem]]) -> list[Alert]:
        out: list[Alert] = []

        def make(kind: str, reason: str, items: list[AlertItem], thread: str | None,
                 thread_resolved: bool = False) -> Alert:
            items = sorted(items, key=lambda i: i.key)
            sev = "critical" if any(i.severity == "critical" for i in items) else "warning"
            aid = _alert_id(report.monitor, report.window_start_ms, kind, thread or "",
                            *([report.model_key] if self.versions_coexist else []))
            return Alert(alert_id=aid, kind=kind, reason=reason, monitor=report.monitor,
                         window_start_ms=report.window_start_ms,
                         window_end_ms=report.window_end_ms, profile_id=report.profile_id,
                         monitor_version=report.monitor_version, severity=sev,
                         items=tuple(items), thread_alert_id=thread,
                         thread_resolved=thread_resolved, correction=self.correction,
                         family_level=self.family_level, tests_in_window=tests,
                         model=report.model, model_version=report.model_version)

        for thread, items in sorted(resolved.items()):
            still = any((s.firing or s.holding) and s.thread == thread
                        for s in self._keys.values())
            out.append(make("resolved", "resolved", items, thread or None, not still))
        for thread, pairs in sorted(updates.items()):
            reason = "escalated" if any(r == "escalated" for r, _ in pairs) else "repeat"
            a = make("update", reason, [i for _, i in pairs], thread or None)
            out.append(a)
            for _, i in pairs:
                st = self._keys[i.key]
                st.notified_severity, st.last_notified_end_ms = st.severity, report.window_end_ms
        if new:
            a = make("firing", "new", new, None)
            out.append(a)
            for i in new:
                st = self._keys[i.key]
                st.notified, st.thread = True, a.alert_id
                st.notified_severity, st.last_notified_end_ms = st.severity, report.window_end_ms
        return out

    # -- state (survives restarts when stored in a table) ---------------------------------

    def state_to_dict(self) -> dict[str, Any]:
        keys = {}
        for k, s in self._keys.items():
            d = asdict(s)
            keys[k] = d
        return {"keys": keys, "last_window": dict(self._last_window), "model": dict(self._model)}

    def load_state(self, d: dict[str, Any]) -> "AlertPolicy":
        """Restore :meth:`state_to_dict`'s output. State written before model identity
        (keys ``monitor/check/feature``) is read as the monitor's model, ``unversioned``: a
        config without a ``model:`` section continues its runs unchanged; one that names a
        model or version closes them as superseded on its first window."""
        self._keys = {}
        for k, s in d.get("keys", {}).items():
            s = dict(s)
            s["last"] = AlertItem(**s["last"]) if s.get("last") else None
            if k.count("/") == 2:
                monitor, check, feature = k.split("/")
                k = alert_key(monitor, check, feature, f"{monitor}:unversioned")
                if s["last"] is not None:
                    s["last"] = replace(s["last"], key=k)
            self._keys[k] = _KeyState(**s)
        self._last_window = dict(d.get("last_window", {}))
        self._model = dict(d.get("model", {}))
        return self


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(x)
    except TypeError:
        return False
