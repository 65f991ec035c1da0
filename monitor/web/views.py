"""HTML sections drawn from window reports (their dict form, as on the reports topic).

Shared by the status page (:mod:`monitor.web.status`) and ``streamdrift report``
(:mod:`monitor.web.report`). Each function takes reports of one monitor and reference in
window order and returns an HTML fragment; charts come from :mod:`monitor.web.charts`.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from typing import Any

from monitor.web.charts import esc, fmt, histogram, intervals, line_chart, reliability

DRIFT = ("numeric_drift", "categorical_drift", "prediction_drift")
PRIMARY = {"numeric_drift": "ks", "categorical_drift": "js", "prediction_drift": "ks"}
Report = dict[str, Any]


def when(ms: int) -> str:
    """Window start as UTC wall-clock time.

    >>> when(1_767_225_600_000)
    '2026-01-01 00:00:00'
    """
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def short(ms: int) -> str:
    return when(ms)[11:]


def model_of(r: Report) -> str:
    """The ``model:version`` a report belongs to (reports written before model identity:
    the monitor's name and ``unversioned``, as :meth:`WindowReport.from_dict` reads them).

    >>> model_of({"monitor": "m", "model": "churn", "model_version": "v2"}), model_of({"monitor": "m"})
    ('churn:v2', 'm:unversioned')
    """
    model = r.get("model")
    if not isinstance(model, str) or not model:
        model = str(r.get("monitor", "?"))
    return f"{model}:{r.get('model_version') or 'unversioned'}"


def profile_warning(r: Report) -> str | None:
    """The warning when the report's profile was built for another model version."""
    built, version = r.get("profile_model_version"), r.get("model_version")
    if built and version and built != version:
        return (f"the reference profile was built for model version {built}, this monitor "
                f"watches {version}: rebuild the profile from this version's training data")
    return None


def is_performance(r: Report) -> bool:
    """A performance report (labels): its checks join the window report of its window."""
    return r.get("kind") == "performance"


def with_performance(r: Report, perf: Report | None) -> Report:
    """The window report ``r`` with the performance checks of ``perf`` (the latest revision
    for that window) in place of any it had, and the model they are of."""
    if perf is None:
        return r
    checks = [c for c in r["checks"] if c["family"] != "performance"] + list(perf["checks"])
    return {**r, "checks": checks, "performance_model": perf.get("model")}


def flagged_features(r: Report) -> list[str]:
    return sorted({c["feature"] for c in r["checks"] if c["flagged"]})


def verdict(r: Report) -> tuple[str, str]:
    """(css class, text) of a window's verdict: what was flagged, by family.

    >>> r = {"checks": [{"family": "numeric_drift", "feature": "f1", "check": "ks",
    ...                  "flagged": True}, {"family": "fairness", "feature": "*",
    ...                  "check": "disparate_impact", "flagged": True}]}
    >>> verdict(r)
    ('flagged', 'numeric drift: f1 · fairness: disparate_impact')
    """
    if r.get("insufficient_data"):
        return "insufficient", "insufficient data"
    by: dict[str, set[str]] = {}
    for c in r["checks"]:
        if c["flagged"]:
            by.setdefault(c["family"], set()).add(c["check"] if c["feature"] == "*"
                                                  else c["feature"])
    if not by:
        return "healthy", "healthy"
    return "flagged", " · ".join(f"{fam.replace('_', ' ')}: {', '.join(sorted(v))}"
                                 for fam, v in by.items())


def windows_table(reports: Sequence[Report], n: int = 12, link: str = "") -> str:
    rows = []
    for r in list(reports)[-n:][::-1]:
        cls, text = verdict(r)
        rows.append(f'<tr class="{cls}" data-window="{r["window_start_ms"]}">'
                    f'<td>{esc(when(r["window_start_ms"]))}</td>'
                    f'<td class="num">{r["events"]:,}</td><td class="num">{r["bad_events"]:,}'
                    f'</td><td class="num">{r["late_events"]:,}</td>'
                    f'<td class="verdict">{esc(text)}</td></tr>')
    return ('<table class="windows"><thead><tr><th>window start (UTC)</th><th>events</th>'
            '<th>bad</th><th>late</th><th>verdict</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _features(reports: Sequence[Report]) -> list[tuple[str, str]]:
    """(family, feature) of every drift feature, in the order the reports list them."""
    seen: dict[tuple[str, str], None] = {}
    for r in reports:
        for c in r["checks"]:
            if c["family"] in DRIFT:
                seen.setdefault((c["family"], c["feature"]), None)
    return list(seen)


def drift_over_time(reports: Sequence[Report], feature_link=None,
                    only: str | None = None) -> str:
    """One small chart per feature: its primary drift statistic per window, flagged windows
    (any drift check of that feature flagged) in red. Features flagged lately come first."""
    xs = [r["window_start_ms"] for r in reports]
    labels = [short(x) for x in xs]
    cards = []
    for fam, feat in _features(reports):
        if only is not None and feat != only:
            continue
        names = [c["check"] for r in reports for c in r["checks"]
                 if c["feature"] == feat and c["family"] == fam]
        # the score: KS; the predicted class: its rate's change (predicted_class_rate)
        check = PRIMARY[fam] if PRIMARY[fam] in names else names[0]
        ys, bad = [], []
        for r in reports:
            cs = [c for c in r["checks"] if c["feature"] == feat and c["family"] == fam]
            main = next((c for c in cs if c["check"] == check), None)
            ys.append(main["effect_size"] if main else None)
            bad.append(any(c["flagged"] for c in cs))
        title = f"{feat} — {check} over the last {len(xs)} windows"
        svg = line_chart(xs, ys, flagged=bad, labels=labels, kind="drift-over-time",
                         title=title)
        name = esc(feat) if feature_link is None else \
            f'<a href="{esc(feature_link(feat))}">{esc(feat)}</a>'
        cls = "card bad" if bad and bad[-1] else "card"
        cards.append((not (bad and bad[-1]), not any(bad),
                      f'<div class="{cls}" data-feature="{esc(feat)}"><div class="card-head">'
                      f'{name} <span class="muted">{check} · {fmt(ys[-1] if ys else None)}'
                      f"</span></div>{svg}</div>"))
    cards.sort(key=lambda t: t[:2])
    return '<div class="grid">' + "".join(c for *_, c in cards) + "</div>"


def histogram_of(r: Report, feature: str) -> str:
    """The window's histogram of ``feature`` against the reference (from the psi check's
    detail), with the figures of every drift check of that feature in that window."""
    cs = [c for c in r["checks"] if c["feature"] == feature and c["family"] in DRIFT]
    h = next((c["detail"].get("histogram") for c in cs if c["check"] == "psi"), None)
    if not h:
        return f'<p class="muted">no histogram of {esc(feature)} in this window</p>'
    if "edges" in h:
        ticks = [fmt(e, 3) for e in h["edges"][:-1]]
    else:
        ticks = list(h["categories"])
    svg = histogram(h["window"], h["reference"], ticks=ticks,
                    title=f"{feature}: window {short(r['window_start_ms'])} vs reference")
    figures = " · ".join(f'<span class="{"bad" if c["flagged"] else ""}">{esc(c["check"])} '
                         f'{fmt(c["effect_size"])}'
                         + (f' (p={fmt(c["p_value"])})' if c["p_value"] is not None else "")
                         + "</span>" for c in cs)
    return (f'<div class="hist" data-feature="{esc(feature)}" data-window='
            f'"{r["window_start_ms"]}"><div class="card-head">{esc(feature)} '
            f'<span class="muted">{figures}</span></div>{svg}</div>')


NOT_RATES = ("consumer_lag", "volume_drop", "volume_spike", "no_data")


def quality_rates(r: Report, limit: int = 16) -> str:
    """The window's data-quality rates that are not zero (flagged first, then the largest),
    each with its 95% Wilson interval."""
    qs = [c for c in r["checks"] if c["family"] == "quality" and c["statistic"]
          and c["check"] not in NOT_RATES and 0 < c["statistic"] <= 1]
    qs.sort(key=lambda c: (not c["flagged"], -c["statistic"]))
    qs = qs[:limit]
    if not qs:
        return '<p class="muted quality-clean">every data-quality rate is zero</p>'
    rows = []
    for c in qs:
        n = c["n_window"] or r["events"]
        lo, hi = wilson(c["statistic"] * n, n) if n else (None, None)
        rows.append((f'{c["check"]} {"" if c["feature"] == "*" else c["feature"]}'.strip(),
                     c["statistic"], lo, hi, c["flagged"]))
    top = min(max(x[3] or x[1] for x in rows) * 1.15, 1.0)
    return intervals(rows, kind="quality-rates", hi=top,
                     title=f"data-quality rates, window {short(r['window_start_ms'])}")


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a rate k/n.

    >>> [round(x, 3) for x in wilson(50, 100)]
    [0.404, 0.596]
    """
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, mid - half), min(1.0, mid + half)


def fairness(r: Report) -> str:
    """Selection rate per group (Wilson 95% intervals) and the disparate-impact ratios with
    their 95% intervals against the four-fifths line."""
    fs = [c for c in r["checks"] if c["family"] == "fairness"]
    if not fs:
        return '<p class="muted">no sensitive attribute configured</p>'
    sel = [c for c in fs if c["check"] == "selection_rate" and c["statistic"] is not None]
    rate_rows = [(c["feature"], c["statistic"],
                  *wilson(c["statistic"] * c["n_window"], c["n_window"]), False) for c in sel]
    ratio_rows = []
    threshold = 0.8
    for c in fs:
        if c["check"] not in ("disparate_impact", "disparate_impact_ref") or \
                c["statistic"] is None:
            continue
        d = c["detail"]
        threshold = d.get("threshold", threshold)
        lo = 1 - d["ci_high"] if "ci_high" in d else None
        hi = 1 - d["ci_low"] if "ci_low" in d else None
        label = (f'{d.get("low_group", "?")} / {d.get("high_group", "?")}'
                 if c["check"] == "disparate_impact"
                 else f'{c["feature"]} / {d.get("reference_group", "ref")}')
        ratio_rows.append((label, c["statistic"], lo, hi, c["flagged"]))
    diffs = [c for c in fs if c["check"].endswith("_diff") and c["statistic"] is not None]
    extra = "".join(f'<li class="{"bad" if c["flagged"] else ""}">{esc(c["check"])}: '
                    f'{fmt(c["statistic"])}'
                    + (f' (p={fmt(c["p_value"])})' if c["p_value"] is not None else "")
                    + "</li>" for c in diffs)
    top = max([1.0, *(x[3] or 0 for x in ratio_rows)])
    return ('<div class="pair"><div><h4>selection rate per group</h4>'
            + intervals(rate_rows, kind="selection-rates", title="selection rate per group")
            + '</div><div><h4>disparate-impact ratio (95% interval)</h4>'
            + intervals(ratio_rows, kind="fairness-ratios", line=threshold, hi=top,
                        title="disparate-impact ratios with 95% intervals")
            + f'</div></div><ul class="figures">{extra}</ul>')


def _reliability_bins(c: dict) -> list[tuple[float, float, int]] | None:
    """Calibration bins from a performance check's detail, in the shapes the labels work
    may give them: a list of {mean_predicted, observed, n} dicts or of triples."""
    d = c.get("detail") or {}
    raw = d.get("reliability") or d.get("calibration_bins") or d.get("bins")
    if not raw:
        return None
    out = []
    for b in raw:
        if isinstance(b, dict):
            x = b.get("mean_predicted", b.get("predicted"))
            y = b.get("observed", b.get("fraction_positive"))
            n = b.get("n", b.get("count", 0))
        else:
            x, y, n = b
        if x is not None and y is not None:
            out.append((float(x), float(y), int(n)))
    return out or None


def performance(reports: Sequence[Report]) -> str:
    """Performance checks (once labels arrive) over the windows, and the latest window's
    reliability diagram where the report has calibration bins."""
    perf = [(r, c) for r in reports for c in r["checks"] if c["family"] == "performance"]
    if not perf:
        return ('<p class="muted no-labels">no labelled windows yet: performance appears '
                "once labels arrive</p>")
    xs = [r["window_start_ms"] for r in reports]
    checks = sorted({(c["check"], c["feature"]) for _, c in perf})
    cards = []
    for check, feat in checks:
        ys, bad = [], []
        for r in reports:
            c = next((c for c in r["checks"] if c["family"] == "performance"
                      and c["check"] == check and c["feature"] == feat), None)
            ys.append(c["statistic"] if c else None)
            bad.append(bool(c and c["flagged"]))
        name = check if feat == "*" else f"{check} {feat}"
        cards.append(f'<div class="card"><div class="card-head">{esc(name)} <span class="muted">'
                     f"{fmt(ys[-1])}</span></div>"
                     + line_chart(xs, ys, flagged=bad, labels=[short(x) for x in xs],
                                  kind="performance-over-time", title=name) + "</div>")
    latest = next(r for r in reversed(list(reports)) if any(
        c["family"] == "performance" for c in r["checks"]))
    d = next(c["detail"] for c in latest["checks"] if c["family"] == "performance")
    model = latest.get("performance_model") or d.get("model") or {}
    if not isinstance(model, dict):
        model = {"name": latest.get("model"), "version": latest.get("model_version", "")}
    done = d.get("label_completeness")
    about = (f'<p class="muted perf-about">model {esc(model.get("name", "?"))} '
             f'{esc(model.get("version", ""))} · window {esc(short(latest["window_start_ms"]))}'
             f' · revision {esc(d.get("revision", "?"))}'
             + (f" · labels {done:.0%} complete" if isinstance(done, (int, float))
                and math.isfinite(done) else "") + "</p>")
    diagram = ""
    for r in reversed(list(reports)):
        bins = next((b for c in r["checks"] if c["family"] == "performance"
                     and (b := _reliability_bins(c))), None)
        if bins:
            diagram = ('<div class="card"><div class="card-head">reliability, window '
                       f'{esc(short(r["window_start_ms"]))}</div>'
                       + reliability(bins, title="reliability diagram") + "</div>")
            break
    return about + '<div class="grid">' + "".join(cards) + diagram + "</div>"


def drift_features(reports: Sequence[Report]) -> list[str]:
    return [f for _, f in _features(reports)]


def most_drifted(r: Report) -> str | None:
    """The drift feature with the largest flagged primary effect (None if none flagged)."""
    best = None
    for c in r["checks"]:
        if c["family"] in DRIFT and c["flagged"] and c["check"] == PRIMARY[c["family"]]:
            if best is None or (c["effect_size"] or 0) > (best["effect_size"] or 0):
                best = c
    return best["feature"] if best else None
