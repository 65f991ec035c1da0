"""The data-quality checks of one closed window: counts in, rates as CheckResults out.

Everything here is counted exactly upstream — per field in the window sketch (decoder states,
NaN / inf, range and robust-z counts, the row-outlier forest, ingest delays), per window in
stage 1 (bad messages, late events, duplicates, schema samples) and in stage 2 (the event
counts of recent windows) — so each rate is a ratio of two exact integers, and the report
carries both (``statistic`` = rate, ``n_window`` = denominator, ``detail["count"]``).

| check | feature | rate | effect size (compared with its floor) |
|---|---|---|---|
| ``bad_event_rate`` | ``*`` | unparseable / all messages | the rate |
| ``late_event_rate`` | ``*`` | late / (events + late) | the rate |
| ``duplicate_rate`` | ``*`` | duplicates / (events + duplicates) | the rate |
| ``schema_change`` | ``*`` | configured fields absent, new fields in samples | the larger of the worst absent rate above the reference's and the most frequent new field's sampled rate; 1.0 when a configured field has no usable value in any event of the window (``never_seen``: a feature, ``prediction.score`` / ``class`` / ``label``, ``sensitive.attribute``) |
| ``null_rate`` | field | JSON null / events | excess over the reference's missing rate |
| ``type_error_rate`` | field | wrong JSON type / events | the rate |
| ``nonfinite_rate`` | numeric field | NaN or ±inf / events | excess over the reference's |
| ``out_of_range_rate`` | numeric field | outside the bounds / finite values | excess over the reference's (learned bounds) or the rate (configured bounds) |
| ``outlier_rate`` | numeric field | robust z beyond the profile's z / finite values | excess over the reference's |
| ``row_outlier_rate`` | ``*`` | rows the isolation forest isolates / rows | excess over the reference's |
| ``stale_event_rate`` | ``*`` | ingest − event time > ``max_event_delay`` / events | the rate (only with ``max_event_delay``) |
| ``volume_drop`` / ``volume_spike`` | ``*`` | events vs the baseline | 1 − events/baseline, events/baseline − 1 |
| ``consumer_lag`` | ``*`` | records of the topic not absorbed yet when the window's partials left stage 1, summed over partitions | lag / ``max_consumer_lag`` (only with it) |
| ``no_data`` | ``*`` | a window without a single message | 1.0 |

The baseline of volume is ``expected_events_per_window`` when configured, else the median of
the last ``volume_baseline_windows`` non-empty windows (at least 3 of them). A window with no
message at all is ``no_data`` (a silent producer), never a volume drop. Unseen categories are
``unseen_rate`` from the kernels, in the quality family too.

Every rate also carries the p-value of a one-sided binomial test against the reference's
rate, so it decides like every other check: significant under the window's false-alarm
budget *and* an excess above its floor (a floor alone pages on noise in small windows).

Quality checks judge their own sufficiency (a silent window has no events, and that is the
point), instead of the window's ``insufficient_data``.
"""

from __future__ import annotations

import statistics
from typing import Any

from scipy.special import bdtrc

from monitor.config import MonitorConfig
from monitor.records import CheckResult
from monitor.stage2.aggregate import ClosedWindow

MIN_BASELINE_WINDOWS = 3


class QualityChecks:
    """``checks(closed_window) -> (report quality section, CheckResults)``."""

    def __init__(self, cfg: MonitorConfig, profile) -> None:
        self.cfg = cfg
        self.q = cfg.checks.quality
        self.min_events = cfg.windows.min_events
        self.numeric = list(profile.numeric_names)
        self.categorical = list(profile.categorical_names)
        ref = profile.reference
        self.ref_fields = ref.quality_counts() if ref is not None else {}
        self.ref_summary = ref.quality_summary() if ref is not None else {}
        self.ref_events = ref.n_events if ref is not None else 0
        self.configured_range = {n for n in cfg.features.numeric
                                 if cfg.feature(n).range is not None}

    # -- one window ------------------------------------------------------------------------
    def checks(self, w: ClosedWindow) -> tuple[dict[str, Any], list[CheckResult]]:
        fields = w.sketch.quality_counts() if w.sketch is not None else {}
        summary = w.sketch.quality_summary() if w.sketch is not None else {}
        bad = sum(w.bad.values())
        dups = int(w.counts.get("duplicates", 0))
        out = [self._rate("bad_event_rate", "*", bad, w.events + bad),
               self._rate("late_event_rate", "*", w.late_events, w.events + w.late_events)]
        if self.cfg.stream.event_id_field:
            out.append(self._rate("duplicate_rate", "*", dups, w.events + dups))
        schema = self._schema(w, fields)
        out.append(schema[1])
        for name, c in fields.items():
            if not self.cfg.feature(name).quality_enabled:
                continue
            out += self._field(name, c, summary, w.events)
        if summary and self.numeric:
            rows, hit = summary["rows_scored"], summary["row_outliers"]
            out.append(self._rate("row_outlier_rate", "*", hit, rows,
                                  base=self._ref_rate("row_outliers", "rows_scored")))
        delay = summary.get("delay", {}) if summary else {}
        if self.q.max_event_delay_ms is not None:
            out.append(self._rate("stale_event_rate", "*", delay.get("stale", 0),
                                  delay.get("events", 0),
                                  detail={"max_event_delay_ms": self.q.max_event_delay_ms}))
        volume = self._volume(w, bad)
        out += volume[1]
        lag = int(w.counts.get("consumer_lag", 0))
        if self.q.max_consumer_lag is not None:
            out.append(CheckResult(check="consumer_lag", family="quality", feature="*",
                                   statistic=float(lag), p_value=None,
                                   effect_size=lag / self.q.max_consumer_lag, n_window=w.events,
                                   n_reference=0, sufficient=bool(w.partitions),
                                   detail={"max_consumer_lag": self.q.max_consumer_lag}))
        section = {"bad_by_reason": dict(w.bad), "fields": fields, "duplicates": dups,
                   "schema": schema[0], "volume": volume[0]}
        if self.q.max_consumer_lag is not None:  # time-dependent: only when judged
            section["consumer_lag"] = lag
        if summary:
            section.update(out_of_range=summary["out_of_range"], outliers=summary["outliers"],
                           rows_scored=summary["rows_scored"],
                           row_outliers=summary["row_outliers"], delay=delay)
        return section, out

    def _field(self, name: str, c: dict[str, int], summary: dict, n: int) -> list[CheckResult]:
        ref = self.ref_fields.get(name, {})
        rn = max(1, self.ref_events)
        ref_missing = (ref.get("null", 0) + ref.get("missing", 0) + ref.get("nan", 0)) / rn
        out = [self._rate("null_rate", name, c.get("null", 0), n, base=ref_missing),
               self._rate("type_error_rate", name, c.get("type_error", 0), n)]
        if name in self.numeric:
            out.append(self._rate("nonfinite_rate", name, c.get("nan", 0) + c.get("inf", 0), n,
                                  base=ref.get("inf", 0) / rn))
            finite = n - sum(c.get(k, 0) for k in ("missing", "null", "type_error", "nan", "inf"))
            rng = summary.get("out_of_range", {}).get(name, 0)
            base = 0.0 if name in self.configured_range else self._ref_rate(
                "out_of_range", None, name)
            out.append(self._rate("out_of_range_rate", name, rng, finite, base=base, detail={
                "below": summary.get("out_of_range_below", {}).get(name, 0),
                "above": summary.get("out_of_range_above", {}).get(name, 0)}))
            out.append(self._rate("outlier_rate", name, summary.get("outliers", {}).get(name, 0),
                                  finite, base=self._ref_rate("outliers", None, name)))
        return out

    def _schema(self, w: ClosedWindow, fields: dict) -> tuple[dict, CheckResult]:
        """Configured fields gone missing (beyond the reference's rate) and fields nobody
        configured or knew, seen in the sampled messages."""
        n = w.events
        rn = max(1, self.ref_events)
        absent = {name: c.get("missing", 0) / n for name, c in fields.items()
                  if n and c.get("missing", 0)}
        excess = {name: r - self.ref_fields.get(name, {}).get("missing", 0) / rn
                  for name, r in absent.items()}
        sampled = int(w.counts.get("schema_sampled", 0))
        new = {k.split(":", 1)[1]: int(v) for k, v in w.counts.items()
               if k.startswith("schema_new:")}
        new_rate = max(new.values()) / sampled if new and sampled else 0.0
        never = self._never_seen(w, fields)
        effect = max([new_rate, *excess.values(), *([1.0] if never else [])])
        section = {"absent_rate": absent, "sampled": sampled, "new_fields": new,
                   "never_seen": never}
        detail: dict[str, Any] = {"sampled": sampled}
        if never:
            detail["never_seen"] = ", ".join(never)
        if absent:
            worst = max(absent, key=absent.__getitem__)
            detail.update(absent_field=worst, absent_rate=absent[worst])
        if new:
            detail["new_fields"] = ", ".join(sorted(new))
        check = CheckResult(check="schema_change", family="quality", feature="*",
                            statistic=effect, p_value=None, effect_size=effect, n_window=n,
                            n_reference=self.ref_events, sufficient=n >= self.min_events,
                            detail=detail)
        return section, check

    def _never_seen(self, w: ClosedWindow, fields: dict) -> list[str]:
        """The configured fields with no usable value in any event of the window, each as
        ``"<config key> '<field>'"``: features absent from every event; the score, decision,
        label or group attribute never present (absent, null or unreadable throughout)."""
        n = w.events
        if not n or w.sketch is None:
            return []
        f, p = self.cfg.features, self.cfg.prediction
        out = [f"features.{kind} {name!r}" for kind, names in
               (("numeric", f.numeric), ("categorical", f.categorical))
               for name in names if fields.get(name, {}).get("missing", 0) >= n]
        sk = w.sketch
        g = sk.groups.counts  # [G+1, (n, positive, predicted, tp, fp, tn, fn)]
        decided = int(g[:, 2].sum())
        if p.score and int(sk.score.n.sum()) == 0:
            out.append(f"prediction.score {p.score!r}")
        if p.class_ and decided == 0:
            out.append(f"prediction.class {p.class_!r}")
        if p.label and decided and int(g[:, 3:7].sum()) == 0:
            out.append(f"prediction.label {p.label!r}")
        if self.cfg.sensitive and len(g) > 1 and int(g[:-1, 0].sum()) == 0:
            out.append(f"sensitive.attribute {self.cfg.sensitive.attribute!r}")
        return out

    def _volume(self, w: ClosedWindow, bad: int) -> tuple[dict, list[CheckResult]]:
        q = self.q
        recent = list(w.recent_events)[-q.volume_baseline_windows:]
        if q.expected_events_per_window:
            baseline: float | None = float(q.expected_events_per_window)
        elif len(recent) >= MIN_BASELINE_WINDOWS:
            baseline = float(statistics.median(recent))
        else:
            baseline = None
        silent = w.events == 0 and bad == 0 and w.late_events == 0
        section = {"events": w.events, "baseline": baseline, "recent_windows": len(recent)}
        ratio = w.events / baseline if baseline else None
        usable = baseline is not None and not silent
        detail = {"baseline": baseline, "ratio": ratio}
        out = [
            CheckResult(check="volume_drop", family="quality", feature="*",
                        statistic=ratio, p_value=None,
                        effect_size=max(0.0, 1.0 - ratio) if ratio is not None else None,
                        n_window=w.events, n_reference=int(baseline or 0), sufficient=usable,
                        detail=detail),
            CheckResult(check="volume_spike", family="quality", feature="*",
                        statistic=ratio, p_value=None,
                        effect_size=max(0.0, ratio - 1.0) if ratio is not None else None,
                        n_window=w.events, n_reference=int(baseline or 0), sufficient=usable,
                        detail=detail),
            CheckResult(check="no_data", family="quality", feature="*",
                        statistic=float(w.events), p_value=None,
                        effect_size=1.0 if silent else 0.0, n_window=w.events, n_reference=0,
                        sufficient=True, detail={"messages": w.events + bad + w.late_events}),
        ]
        return section, out

    # -- helpers ---------------------------------------------------------------------------
    def _ref_rate(self, key: str, denominator: str | None, name: str | None = None) -> float:
        s = self.ref_summary
        if not s:
            return 0.0
        if name is None:
            d = s.get(denominator, 0)
            return s.get(key, 0) / d if d else 0.0
        f = self.ref_fields.get(name, {})
        finite = self.ref_events - sum(f.get(k, 0) for k in
                                       ("missing", "null", "type_error", "nan", "inf"))
        return s.get(key, {}).get(name, 0) / finite if finite > 0 else 0.0

    def _rate(self, check: str, feature: str, k: int, n: int, base: float = 0.0,
              detail: dict | None = None) -> CheckResult:
        """A rate of ``k`` in ``n`` against the reference's rate ``base``: effect = the
        excess, p = the one-sided binomial test of H0 rate <= base (P(X >= k), X ~
        Binomial(n, base); 0 when the reference never saw it and the window did)."""
        rate = k / n if n else 0.0
        p = 1.0 if k <= 0 or not n else float(bdtrc(k - 1, n, min(max(base, 0.0), 1.0)))
        return CheckResult(check=check, family="quality", feature=feature, statistic=rate,
                           p_value=p, effect_size=rate - base if n else 0.0,
                           n_window=int(n), n_reference=self.ref_events,
                           sufficient=n >= self.min_events,
                           detail={"count": int(k), "reference_rate": base, **(detail or {})})
