"""The version side of the alert policy: alert keys and ids, and closing the alert state of a
model version that is no longer reported (``reason: superseded``), see
:mod:`monitor.stage2.alerts`."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from monitor.records import Alert, AlertItem, WindowReport


def alert_key(monitor: str, check: str, feature: str,
              model_version: str = "") -> str:
    """``monitor/model:version/check/feature`` (``monitor/check/feature`` without a version).

    >>> alert_key("m", "ks", "age", "churn:v2")
    'm/churn:v2/ks/age'
    """
    return f"{monitor}/{model_version}/{check}/{feature}" if model_version \
        else f"{monitor}/{check}/{feature}"


def _alert_id(*parts: object) -> str:
    return "sd-" + hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]


class VersionRetirement:
    """AlertPolicy's supersede rules (mixed into it; uses its key and window state)."""

    _keys: dict[str, Any]
    _last_window: dict[str, int]
    _model: dict[str, str]
    resolve_windows: int
    correction: str
    family_level: float

    def _retire(self, report: WindowReport) -> list[Alert]:
        """versions_coexist: supersede the versions of this monitor that sent no report for
        ``resolve_windows`` windows before this one."""
        length = report.window_end_ms - report.window_start_ms
        gone = [k for k, start in self._last_window.items()
                if k.startswith(report.monitor + "/")
                and start + length * (1 + self.resolve_windows) <= report.window_start_ms]
        out = []
        for k in gone:
            del self._last_window[k]
            out += self._close_keys(report, [key for key in self._keys
                                             if key.startswith(k + "/")])
        return out

    def _supersede(self, report: WindowReport) -> list[Alert]:
        """Close the keys of the monitor's previous (model, version) when this report names
        another one: one ``resolved`` notification per thread (``reason: superseded``, naming
        the old version), then their state is dropped."""
        now = report.model_key
        before = self._model.get(report.monitor)
        self._model[report.monitor] = now
        mine = report.monitor + "/"
        old = [k for k in self._keys if k.startswith(mine) and not k.startswith(f"{mine}{now}/")]
        if before == now or not old:
            return []
        return self._close_keys(report, old)

    def _close_keys(self, report: WindowReport, old: list[str]) -> list[Alert]:
        threads: dict[str, list[AlertItem]] = {}
        for k in old:
            st = self._keys.pop(k)
            if st.firing and st.notified and st.last is not None:
                threads.setdefault(st.thread or "", []).append(
                    replace(st.last, severity=st.severity, bad_windows=0))
        out = []
        for thread, items in sorted(threads.items()):
            old_model, _, old_version = (items[0].key.split("/")[1].rpartition(":")
                                         if items[0].key.count("/") == 3 else
                                         (report.monitor, ":", "unversioned"))
            items = sorted(items, key=lambda i: i.key)
            sev = "critical" if any(i.severity == "critical" for i in items) else "warning"
            out.append(Alert(
                alert_id=_alert_id(report.monitor, report.window_start_ms, "resolved", thread),
                kind="resolved", reason="superseded", monitor=report.monitor,
                window_start_ms=report.window_start_ms, window_end_ms=report.window_end_ms,
                profile_id=report.profile_id, monitor_version=report.monitor_version,
                severity=sev, items=tuple(items), thread_alert_id=thread or None,
                thread_resolved=True, correction=self.correction,
                family_level=self.family_level, tests_in_window=0, model=old_model,
                model_version=old_version))
        return out
