"""Stage 2's step for a ``performance`` partials message (the live label stream).

:class:`~monitor.stage2.step.Stage2Step` hands every message of kind ``performance`` here, inside
the same atomic step (one Kafka transaction: state, reports, alerts). The state it keeps:

- blobs ``perf/<window>:<partition>``: the latest :class:`PerformancePartial` of each source
  partition for each window of prediction time not judged yet (a partial whose revision is
  not above the held one changes nothing: partials are snapshots, resent ones are harmless);
- ``doc["performance"]``: per window the held ``[revision, final]`` per partition, per
  partition the largest prediction watermark it reported, and ``judged_before``: windows
  starting before it were judged and are gone (a partial for one of them is counted in
  ``late_partials``).

Every accepted partial makes one **performance report** of its window (the merge over
partitions in partition order, :func:`~monitor.stage2.performance.performance_report`, with
the model's name and version, the revision, label completeness, slices and the findings of
:func:`~monitor.stage2.performance.performance_findings`), published to the reports topic
keyed ``<monitor>:performance:<window>:<revision>`` (readers keep the highest revision).

Alerts: a window goes to the alert policy **once**, at the first revision whose labels
suffice, oldest window first (the policy takes windows in order and ignores a window it saw):
when every partition of the prediction topic reported a prediction watermark past the
window's end (stage 1 sends a partition's partials oldest window first, each carrying as
watermark the next one's start, and a partition without predictions sends its watermark
alone, so a watermark past a window means that partition's partial of it, if any, arrived:
the window's predictions are all counted) and every scope (the whole window, each slice) has
its ``min_labelled`` labels (a slice: and ``min_slice``) or can no longer get them (fewer
predictions not expired than that). A final window (every partition's revision final)
always qualifies. Later revisions are still reported but page nothing: one page per window,
slice and check (``doc["performance"]["alerted_before"]``: windows starting before it went to
the policy). A window's blobs are dropped once it is final (``judged_before``).
The policy sees the window as a
:class:`~monitor.records.WindowReport` of monitor ``<monitor>.performance`` whose checks are
the findings (family ``performance``, feature ``*`` or the slice ``<key>=<value>``), so
confirmation, dedup, resolve, silences, Slack, Alertmanager and retraining triggers work as for
drift; the check detail names the model version, slice, revision, label completeness and the
reference value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from monitor.records import WindowReport
from monitor.stage1.cells import Cells
from monitor.stage1.labels import PerformancePartial
from monitor.stage1.partials import PartialMessage
from monitor.stage2.performance import (PerformanceRules, PerformanceWindows,
                                        findings_as_checks, performance_findings,
                                        performance_report)

PERF = "perf/"


@dataclass
class PerformanceReport:
    """One revision of one window's performance, as the reports topic carries it."""

    record: dict[str, Any]
    checks: list  # CheckResult: the findings as the status page and the alert policy see them

    @property
    def monitor(self) -> str:
        return self.record["monitor"]

    @property
    def window_start_ms(self) -> int:
        return self.record["window_start_ms"]

    @property
    def key(self) -> str:
        return f"{self.monitor}:performance:{self.window_start_ms}:{self.record['revision']}"

    @property
    def events(self) -> int:
        return int(self.record["overall"]["predictions"])

    @property
    def flagged(self) -> list:
        return [c for c in self.checks if c.flagged]

    def to_dict(self) -> dict[str, Any]:
        return self.record


class PerformanceStep:
    """``step(state, result, msg, policy, silences)``: absorb one performance message into
    ``result`` (its document, puts, deletes, reports, alerts). See the module docstring."""

    def __init__(self, *, monitor: str, cells: Cells, slices: list[str], groups: list[str],
                 model: dict[str, str], rules: PerformanceRules, reference: dict | None,
                 slice_keys: list[str], min_group: int = 0, monitor_version: str = "") -> None:
        self.monitor, self.cells, self.slices, self.groups = monitor, cells, slices, groups
        self.model, self.rules, self.reference = dict(model), rules, reference
        self.slice_keys, self.min_group = list(slice_keys), min_group
        self.monitor_version = monitor_version

    def __call__(self, state, r, msg: PartialMessage, policy: Any, silences) -> None:
        doc = r.doc
        perf = doc.setdefault("performance", {"judged_before": None, "windows": {}, "wm": {}})
        perf["n"] = max(int(perf.get("n", 0)), msg.n_partitions)
        wm = perf["wm"]
        p = msg.partition
        wm[str(p)] = max(int(wm.get(str(p), msg.watermark_ms)), msg.watermark_ms)
        if msg.sketch is None:  # a partition's watermark alone (no window of it changed)
            self._judge(state, r, perf, policy, silences)
            return
        part = PerformancePartial.from_bytes(msg.sketch)
        start = part.window_start_ms
        jb = perf["judged_before"]
        if jb is not None and start < jb:
            meta = doc["meta"]
            meta["late_performance_partials"] = int(meta.get("late_performance_partials")
                                                    or 0) + 1
            return
        held = perf["windows"].setdefault(str(start), {})
        old = held.get(str(p))
        if old is not None and old[0] >= part.revision:
            return
        held[str(p)] = [part.revision, bool(part.final), part.window_end_ms]
        r.puts[f"{PERF}{start}:{p}"] = msg.sketch
        report = self._report(state, r, start)
        r.reports.append(report)
        self._judge(state, r, perf, policy, silences, {start: report})

    # -- helpers -------------------------------------------------------------------------
    def _blob(self, state, r, key: str) -> bytes:
        return r.puts[key] if key in r.puts else state.blobs[key]

    def _report(self, state, r, start: int) -> PerformanceReport:
        held = r.doc["performance"]["windows"][str(start)]
        windows = PerformanceWindows(self.cells)
        for p in sorted(held, key=int):
            windows.add(PerformancePartial.from_bytes(self._blob(state, r, f"{PERF}{start}:{p}")))
        rep = performance_report(windows.merged(start), self.cells, self.slices, self.groups,
                                 self.model, self.min_group)
        findings = performance_findings(rep, self.reference, self.rules)
        rep.update(monitor=self.monitor, kind="performance", findings=findings,
                   slice_keys=self.slice_keys, model_version=self.model.get("version"))
        checks = findings_as_checks(rep, findings)
        rep["checks"] = [c.to_dict() for c in checks]
        plain = orjson.loads(orjson.dumps(rep, option=orjson.OPT_SERIALIZE_NUMPY
                                          | orjson.OPT_NON_STR_KEYS))  # numpy, NaN -> null
        return PerformanceReport(plain, checks)

    @staticmethod
    def _closed(perf: dict, start: int) -> bool:
        """Every partition's prediction watermark is past the window's end."""
        held = perf["windows"][str(start)]
        end = max(e for _, _, e in held.values())
        return (len(perf["wm"]) >= int(perf.get("n", 0))
                and all(int(w) >= end for w in perf["wm"].values()))

    @classmethod
    def _ready(cls, perf: dict, start: int) -> bool:
        """Final: nothing can change the window any more."""
        held = perf["windows"][str(start)]
        return all(final for _, final, _ in held.values()) and cls._closed(perf, start)

    def _sufficient(self, report: PerformanceReport) -> bool:
        """Every scope has its labels or can no longer get them (module docstring)."""
        rec, rules = report.record, self.rules
        scopes = [(rules.min_labelled, rec["overall"])] + [
            (max(rules.min_labelled, rules.min_slice), s) for s in rec["slices"].values()]
        return all(s["labelled"] >= need or s["predictions"] - s["expired"] < need
                   for need, s in scopes)

    def _judge(self, state, r, perf: dict, policy: Any, silences,
               reports: dict | None = None) -> None:
        """Windows to the policy at their first sufficient revision, then the final ones
        dropped, both oldest first (module docstring)."""
        reports = dict(reports or {})
        jb = perf["judged_before"]
        ab = perf.setdefault("alerted_before", jb)
        loaded = False
        for start in sorted(int(s) for s in perf["windows"]):
            if ab is not None and start < ab:
                continue
            if not self._closed(perf, start):
                break
            report = reports.get(start) or self._report(state, r, start)
            if not (self._ready(perf, start) or self._sufficient(report)):
                break
            if policy is not None:
                if not loaded:
                    policy.load_state(r.doc["policy"])
                    policy.set_silences(list(silences()))
                    loaded = True
                r.alerts += policy.update(self.window_report(report)).alerts
            ab = perf["alerted_before"] = start + 1
        if loaded:
            r.doc["policy"] = policy.state_to_dict()
        for start in sorted(int(s) for s in perf["windows"]):
            if ab is None or start >= ab or not self._ready(perf, start):
                break
            for p in perf["windows"].pop(str(start)):
                key = f"{PERF}{start}:{p}"
                if key in r.puts:
                    del r.puts[key]
                if key in state.blobs:
                    r.deletes.append(key)
            perf["judged_before"] = start + 1

    def window_report(self, report: PerformanceReport) -> WindowReport:
        """The alert policy's view of a judged window (module docstring)."""
        rec = report.record
        return WindowReport(
            monitor=f"{self.monitor}.performance", window_start_ms=rec["window_start_ms"],
            window_end_ms=rec["window_end_ms"], profile_id="",
            events=int(rec["overall"]["labelled"] or 0), late_events=0, bad_events=0,
            partitions=list(rec["partitions"]), quality={}, checks=report.checks,
            insufficient_data=int(rec["overall"]["labelled"] or 0) < self.rules.min_labelled,
            monitor_version=self.monitor_version)
