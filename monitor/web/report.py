"""``streamdrift report``: one self-contained HTML file from window reports.

The reports come from a JSON-lines file (``replay --reports`` or ``output.reports_jsonl``
writes one) or from the reports topic of a running deployment, for a window range. The file
holds its stylesheet and its charts (server-drawn SVG): it opens offline, anywhere.

>>> r = {"monitor": "m", "window_start_ms": 0, "window_end_ms": 1000, "profile_id": "p",
...      "events": 10, "late_events": 0, "bad_events": 0, "insufficient_data": True,
...      "checks": [], "quality": {}}
>>> page = render_report([r])
>>> page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
True
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from monitor import __version__
from monitor.errors import StreamdriftError
from monitor.web import views
from monitor.web.charts import esc

ASSETS = Path(__file__).with_name("assets")


def stylesheet() -> str:
    return (ASSETS / "style.css").read_text()


def parse_time(text: str | None, what: str) -> int | None:
    """``--from`` / ``--to``: epoch milliseconds or an ISO-8601 time (UTC unless it says).

    >>> parse_time("2026-01-01T00:00:03", "--from"), parse_time("1767225603000", "--to")
    (1767225603000, 1767225603000)
    """
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StreamdriftError(f"{what}: {text!r} is not a time; give epoch milliseconds or "
                               "ISO 8601, e.g. 2026-01-01T12:00:00Z") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return int(t.timestamp() * 1000)


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Reports from a JSON-lines file; a line that is not a report is skipped and counted
    on the report's page, never fatal."""
    path = Path(path)
    if not path.exists():
        raise StreamdriftError(f"--input: {path} does not exist (write one with "
                               "`streamdrift replay --reports` or output.reports_jsonl)")
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError:
                yield {"_bad": True}
                continue
            yield d if isinstance(d, dict) and "window_start_ms" in d and "checks" in d \
                else {"_bad": True}


def read_inputs(paths: list[str]) -> Iterator[dict[str, Any]]:
    """Reports from each file, and from ``<file>.performance.jsonl`` beside it when replay
    wrote one (``replay --labels``)."""
    for p in paths:
        yield from read_jsonl(p)
        side = Path(f"{p}.performance.jsonl")
        if side.exists() and str(side) not in paths:
            yield from read_jsonl(side)


def select(reports: Iterable[dict[str, Any]], start_ms: int | None = None,
           end_ms: int | None = None, monitor: str | None = None
           ) -> tuple[list[dict[str, Any]], int]:
    """Reports inside [start_ms, end_ms) by window start, of ``monitor`` if given, the last
    copy of each window (per model version) kept (a re-published window replaces itself), in window order; and
    the number of lines that were not reports."""
    keep: dict[tuple[str, int], dict[str, Any]] = {}
    perf: dict[tuple[str, int], dict[str, Any]] = {}
    bad = 0
    for r in reports:
        if r.get("_bad"):
            bad += 1
            continue
        if views.is_performance(r):  # the latest revision of each window's performance
            k = (r.get("monitor", ""), r["window_start_ms"])
            if r.get("revision", 0) >= perf.get(k, {}).get("revision", -1):
                perf[k] = r
            continue
        s = r["window_start_ms"]
        if (start_ms is not None and s < start_ms) or (end_ms is not None and s >= end_ms):
            continue
        if monitor is not None and r.get("monitor") != monitor:
            continue
        keep[(r.get("monitor", ""), views.model_of(r), s)] = r  # per model version
    merged = [views.with_performance(r, perf.get((k[0], k[2]))) for k, r in keep.items()]
    return sorted(merged, key=lambda r: (r.get("monitor", ""), views.model_of(r),
                                         r["window_start_ms"])), bad


def _groups(reports: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in reports:
        out.setdefault((r.get("monitor", "?"), views.model_of(r)), []).append(r)
    return out


def render_group(monitor: str, model: str, rs: Sequence[dict[str, Any]]) -> str:
    last = rs[-1]
    flagged = [r for r in rs if r["checks"] and any(c["flagged"] for c in r["checks"])]
    feats = views.drift_features(rs)
    drifted = sorted({f for r in rs for f in views.flagged_features(r) if f in feats})
    hist_feats = drifted + [f for f in feats if f not in drifted]
    # each feature's histogram in the window where its drift peaked (the last window if none)
    hists = []
    for f in hist_feats:
        peak = max((r for r in rs if f in views.flagged_features(r)),
                   key=lambda r: max((c["effect_size"] or 0) for c in r["checks"]
                                     if c["feature"] == f and c["family"] in views.DRIFT),
                   default=last)
        hists.append(views.histogram_of(peak, f))
    worst_q = max(rs, key=lambda r: sum(1 for c in r["checks"] if c["family"] == "quality"
                                        and c["flagged"]))
    fair = next((r for r in reversed(rs) if any(c["family"] == "fairness" and c["flagged"]
                                                for c in r["checks"])), last)
    warn = views.profile_warning(last)
    return (f'<section class="group" data-monitor="{esc(monitor)}" data-model="{esc(model)}">'
            f'<h2>{esc(monitor)} <span class="muted">model {esc(model)} · {len(rs)} windows, '
            f"{len(flagged)} flagged · {esc(views.when(rs[0]['window_start_ms']))} to "
            f"{esc(views.when(last['window_end_ms']))} UTC</span></h2>"
            + (f'<p class="pill warning profile-mismatch">{esc(warn)}</p>' if warn else "")
            + f"<h3>Windows</h3>{views.windows_table(rs, n=len(rs))}"
            f"<h3>Drift over time</h3>{views.drift_over_time(rs)}"
            "<h3>Histograms: window against reference</h3>"
            '<p class="muted">drifted features in the window where they drifted most, the '
            "others in the last window; bins are the reference's 20-quantiles</p>"
            + '<div class="hgrid">' + "".join(hists) + "</div>"
            + f"<h3>Data quality <span class=\"muted\">window "
              f"{esc(views.short(worst_q['window_start_ms']))}</span></h3>"
            + views.quality_rates(worst_q)
            + f"<h3>Fairness <span class=\"muted\">window "
              f"{esc(views.short(fair['window_start_ms']))}</span></h3>"
            + views.fairness(fair)
            + "<h3>Performance</h3>" + views.performance(rs) + "</section>")


def render_report(reports: Sequence[dict[str, Any]], title: str = "streamdrift report",
                  skipped: int = 0) -> str:
    body = [render_group(m, v, rs) for (m, v), rs in _groups(reports).items()]
    if not body:
        body = ['<section><p class="muted">no window reports in this range</p></section>']
    note = f" · {skipped} lines that were not reports skipped" if skipped else ""
    made = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{stylesheet()}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><span class=\"muted\">{len(reports)} window "
            f"reports{note} · made {made} by streamdrift {esc(__version__)}</span></header>"
            "<main>" + "".join(body) + "</main></body></html>")


def write_report(reports: Iterable[dict[str, Any]], path: str | Path,
                 start_ms: int | None = None, end_ms: int | None = None,
                 monitor: str | None = None) -> int:
    """Select, render and write; returns the number of windows in the file."""
    rs, bad = select(reports, start_ms, end_ms, monitor)
    Path(path).write_text(render_report(rs, skipped=bad), encoding="utf-8")
    return len(rs)


def read_topic(client: dict[str, Any], topic: str) -> Iterator[dict[str, Any]]:
    """Every report on ``topic`` up to its end as of now, without joining a consumer group."""
    from monitor.web.history import read_to_end

    for value in read_to_end(client, topic, "topics.reports"):
        try:
            d = orjson.loads(value)
        except orjson.JSONDecodeError:
            yield {"_bad": True}
            continue
        yield d if isinstance(d, dict) and "checks" in d else {"_bad": True}
