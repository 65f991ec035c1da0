"""Alertmanager sink: each alert item becomes an Alertmanager alert, kept alive until resolved.

Alerts are posted to Alertmanager's API v2 (``POST /api/v2/alerts``, a JSON list of
postable alerts) with

- labels ``alertname`` (by family: ``FeatureDrift``, ``PredictionDrift``, ``DataQuality``,
  ``FairnessGap``, ``PerformanceDrop``), ``monitor``, ``model``, ``version`` (the model
  version; by default the reference profile id), ``feature``, ``check``, ``slice``
  (``all`` unless the check ran on a slice), ``family``, ``severity``, plus the config's own;
- annotations ``summary`` (one line), ``statistics`` (the figures behind it), ``window``,
  ``alert_id`` and ``status_page`` (a link to the feature on the monitor's status page, also
  the ``generatorURL``);
- ``startsAt`` = the start of the first bad window (event time), ``endsAt`` = now + 4 resend
  intervals while firing, so Alertmanager never times an open alert out while the monitor
  lives (it re-sends every ``resend_interval_s``, as Prometheus does); a resolution posts the
  same labels with ``endsAt`` = now. An escalation changes the ``severity`` label, i.e. the
  alert's identity, so the old one is resolved in the same post.

Alertmanager keeps alerts in memory only (``--storage.path`` holds silences and the
notification log): a restarted Alertmanager gets every open alert back from the next re-send,
with its original ``startsAt``, and its notification log keeps it from paging twice. A
restarted sink adopts this monitor's open alerts from Alertmanager (:meth:`restore`) and
keeps re-sending them. Posting the same alert again is harmless (Alertmanager merges by label
set), so a repeated ``write`` after a crash delivers nothing twice.

>>> from monitor.records import Alert, AlertItem
>>> item = AlertItem(key="m/ks/age", check="ks", family="numeric_drift", feature="age",
...     severity="critical", statistic=0.31, p_value=1e-12, effect_size=0.31, floor=0.1,
...     level=5e-4, n_window=5000, n_reference=50000, since_window_start_ms=0, bad_windows=2)
>>> a = Alert("sd-" + "0" * 24, "firing", "new", "loan", 60_000, 120_000, "prof-1", "0.1.0",
...     "critical", (item,), None, False, "bonferroni", 0.01, 20)
>>> sink = AlertmanagerSink("http://127.0.0.1:9093", status_url="http://mon:9108")
>>> p = sink.postable(a, item, now_s=1000.0)
>>> p["labels"]["alertname"], p["labels"]["feature"], p["startsAt"], p["endsAt"]
('FeatureDrift', 'age', '1970-01-01T00:00:00Z', '1970-01-01T00:20:40Z')
>>> p["annotations"]["summary"]
'ks drift on age: effect 0.31 (floor 0.1), p 1.0e-12'
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from http.client import HTTPException
from typing import Any

from monitor.records import Alert, AlertItem
from monitor.sinks import SinkHealth, SinkRejected, SinkUnavailable

log = logging.getLogger("streamdrift.sinks.alertmanager")

ALERTNAMES = {"numeric_drift": "FeatureDrift", "categorical_drift": "FeatureDrift",
              "prediction_drift": "PredictionDrift", "quality": "DataQuality",
              "fairness": "FairnessGap", "performance": "PerformanceDrop"}
ENDS_AFTER_RESENDS = 4


def iso(t_s: float) -> str:
    return _dt.datetime.fromtimestamp(t_s, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


class AlertmanagerSink:
    """Posts alert items to Alertmanager at ``url`` (its base, e.g. ``http://am:9093``).

    ``model`` / ``model_version``: override the ``model`` and ``version`` labels (default:
    the alert's own ``model`` and ``model_version``, i.e. the config's ``model:`` section, so
    a notification closing an old version's keys carries that version); ``status_url``: the
    monitor's status page; ``labels``: extra static labels; ``resend_interval_s``: how often
    open alerts are posted again; ``timeout_s``/``retries``: per post, before :class:`SinkUnavailable`.
    """

    name = "alertmanager"

    def __init__(self, url: str, *, model: str | None = None, model_version: str | None = None,
                 status_url: str | None = None, labels: Mapping[str, str] | None = None,
                 resend_interval_s: float = 60.0, timeout_s: float = 10.0, retries: int = 3,
                 backoff_s: float = 0.5, rejected_retry_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.model_version = model_version
        self.status_url = status_url.rstrip("/") if status_url else None
        self.labels = dict(labels or {})
        self.resend_interval_s = resend_interval_s
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.rejected_retry_s = rejected_retry_s
        self.health = SinkHealth(self.name)
        self._open: dict[str, dict[str, Any]] = {}     # alert key -> postable alert
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._resender: threading.Thread | None = None

    def __repr__(self) -> str:
        return (f"AlertmanagerSink(url={self.url!r}, resend_interval_s="
                f"{self.resend_interval_s!r})")

    # -- what is sent ------------------------------------------------------------------

    def postable(self, a: Alert, i: AlertItem, now_s: float | None = None) -> dict[str, Any]:
        """The API v2 postable alert for one item of an alert event (firing: ``endsAt`` in the
        future; resolved: ``endsAt`` = now)."""
        now_s = time.time() if now_s is None else now_s
        starts = i.since_window_start_ms / 1000.0
        labels = {**self.labels, "alertname": ALERTNAMES.get(i.family, "StreamdriftAlert"),
                  "monitor": a.monitor, "model": self.model or a.model,
                  "version": self.model_version or a.model_version, "feature": i.feature,
                  "check": i.check, "slice": str(i.detail.get("slice") or "all"),
                  "family": i.family, "severity": i.severity}
        ends = now_s if a.kind == "resolved" else now_s + ENDS_AFTER_RESENDS * self.resend_interval_s
        summary = f"{i.check} {'drift' if 'drift' in i.family else i.family} on {i.feature}: " \
                  f"effect {_num(i.effect_size)} (floor {_num(i.floor)})"
        if i.p_value is not None:
            summary += f", p {_num(i.p_value)}"
        stats = {"statistic": i.statistic, "effect_size": i.effect_size, "floor": i.floor,
                 "p_value": i.p_value, "level": i.level, "n_window": i.n_window,
                 "n_reference": i.n_reference, "bad_windows": i.bad_windows,
                 "correction": a.correction, "tests_in_window": a.tests_in_window}
        ann = {"summary": summary, "statistics": json.dumps(stats, sort_keys=True),
               "window": f"{iso(a.window_start_ms / 1000)}/{iso(a.window_end_ms / 1000)}",
               "alert_id": a.alert_id, "reference_profile": a.profile_id}
        out: dict[str, Any] = {"labels": labels, "annotations": ann, "startsAt": iso(starts),
                               "endsAt": iso(max(ends, starts))}
        if self.status_url:
            q = urllib.parse.urlencode({"view": "feature", "feature": i.feature,
                                        "window": a.window_start_ms})
            ann["status_page"] = out["generatorURL"] = f"{self.status_url}/status?{q}"
        return out

    # -- the sink verb -----------------------------------------------------------------

    def write(self, alerts: Sequence[Alert]) -> None:
        try:
            for a in alerts:
                self._write_one(a)
        except SinkUnavailable as e:
            self.health.record(e)
            raise
        self.health.delivered_one()
        self._ensure_resender()

    def _write_one(self, a: Alert) -> None:
        now = time.time()
        batch, opened, closed = [], {}, []
        with self._lock:
            for i in a.items:
                p = self.postable(a, i, now)
                old = self._open.get(i.key)
                if a.kind == "resolved":
                    batch.append(p if old is None else {**old, "endsAt": p["endsAt"]})
                    closed.append(i.key)
                    continue
                if old is not None and old["labels"] != p["labels"]:  # escalated: new identity
                    batch.append({**old, "endsAt": iso(max(now, _parse(old["startsAt"])))})
                if old is not None and old["labels"] == p["labels"]:
                    p["startsAt"] = old["startsAt"]
                batch.append(p)
                opened[i.key] = p
        self._post(batch)
        with self._lock:
            self._open.update(opened)
            for k in closed:
                self._open.pop(k, None)

    def restore(self, monitor: str) -> int:
        """Adopt ``monitor``'s open alerts from Alertmanager (after a restart of this sink),
        so they keep being re-sent; returns how many. Unreachable: 0, nothing adopted."""
        q = urllib.parse.urlencode({"filter": f'monitor="{monitor}"', "silenced": "true",
                                    "inhibited": "true", "active": "true"})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{q}",
                                        timeout=self.timeout_s) as r:
                got = json.loads(r.read())
        except (OSError, HTTPException, ValueError) as e:
            log.warning("alertmanager: could not read open alerts to adopt (%s)", e)
            return 0
        n = 0
        with self._lock:
            for g in got:
                lab = g.get("labels") or {}
                key = f"{lab.get('monitor')}/{lab.get('check')}/{lab.get('feature')}"
                if lab.get("check") and key not in self._open:
                    p = {"labels": lab, "annotations": g.get("annotations") or {},
                         "startsAt": g["startsAt"], "endsAt": g["endsAt"]}
                    if g.get("generatorURL"):
                        p["generatorURL"] = g["generatorURL"]
                    self._open[key] = p
                    n += 1
        if n:
            self._ensure_resender()
        return n

    # -- keeping open alerts alive -----------------------------------------------------

    def resend(self) -> int:
        """Post every open alert again with a fresh ``endsAt``; returns how many."""
        ends = iso(time.time() + ENDS_AFTER_RESENDS * self.resend_interval_s)
        with self._lock:
            batch = [{**p, "endsAt": ends} for p in self._open.values()]
        if batch:
            self._post(batch)
        return len(batch)

    def _ensure_resender(self) -> None:
        if self._resender is None or not self._resender.is_alive():
            self._resender = threading.Thread(target=self._resend_loop, daemon=True,
                                              name="alertmanager-resend")
            self._resender.start()

    def _resend_loop(self) -> None:
        while not self._stop.wait(self.resend_interval_s):
            try:
                if self.resend():
                    self.health.recovered()
            except SinkUnavailable as e:
                self.health.record(e)
                log.warning("%s (open alerts are re-sent at the next interval)", e)

    def close(self) -> None:
        self._stop.set()

    # -- HTTP --------------------------------------------------------------------------

    def _post(self, batch: list[dict[str, Any]]) -> None:
        body = json.dumps(batch).encode()
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(10.0, self.backoff_s * 2 ** (attempt - 1)))
            req = urllib.request.Request(f"{self.url}/api/v2/alerts", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    r.read()
                    return
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")[:300]
                if 400 <= e.code < 500 and e.code != 429:
                    raise SinkRejected(self.name, f"http_{e.code}", f"Alertmanager refused "
                                       f"{len(batch)} alert(s): {detail.strip()} (check "
                                       "alertmanager.url and alertmanager.labels)",
                                       self.rejected_retry_s) from None
                last, kind = f"HTTP {e.code} {detail.strip()}", f"http_{e.code}"
            except (OSError, HTTPException) as e:
                last, kind = f"{type(e).__name__}: {e}", "transport"
        raise SinkUnavailable(self.name, f"{last} after {self.retries + 1} attempts",
                              min(30.0, self.resend_interval_s), kind=kind)


def _parse(stamp: str) -> float:
    return _dt.datetime.fromisoformat(stamp).timestamp()
