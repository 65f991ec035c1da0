"""The status page, served by the monitor's HTTP server beside ``/health`` and ``/metrics``.

Routes (all GET; :meth:`StatusPage.route` answers them, :func:`monitor.web.http.serve`
dispatches every path it does not know to it):

- ``/`` and ``/status``: the page, per monitor and model version: windows, drift charts and
  alerts of one (monitor, model:version) at a time. Query: ``monitor`` (a monitor and model
  version, as ``monitor|model:version``; the selector lists every pair seen), ``view``
  (overview | feature | quality | alerts), ``feature``,
  ``window`` (window start, epoch ms). Defaults: the first monitor, the overview, the most
  drifted feature of the latest window, the latest window.
- ``/status/main?...``: the same page's ``<main>`` only (what the page's script swaps in).
- ``/status/version``: ``{"version": N}``, N growing whenever a report or alert arrives.
- ``/static/style.css``, ``/static/status.js``: the page's own assets (no CDN).

Everything comes from a bounded :class:`~monitor.web.history.History` of the reports and
alerts topics, plus this process's stage health and consumer lag where it runs stage 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from monitor import __version__
from monitor.web import views
from monitor.web.charts import esc, fmt
from monitor.web.history import History

ASSETS = Path(__file__).with_name("assets")
VIEWS = (("overview", "Overview"), ("feature", "Feature"),
         ("quality", "Quality · fairness · performance"), ("alerts", "Alerts & silences"))
STATIC = {"/static/style.css": ("style.css", "text/css; charset=utf-8"),
          "/static/status.js": ("status.js", "text/javascript; charset=utf-8")}
Answer = tuple[int, str, bytes]
PILL = {"flagged": "critical", "healthy": "ok", "insufficient": "warning"}


class StatusPage:
    """``route(path) -> (status, content type, body)`` or None for paths it does not serve.

    ``health()`` returns this process's stage health: a dict with ``stages`` ({name: state})
    and ``consumer_lag`` ({partition: messages}); ``silences()`` the silences in force."""

    def __init__(self, history: History, health: Callable[[], dict[str, Any]] | None = None,
                 silences: Callable[[], list] | None = None, windows_shown: int = 24) -> None:
        self.history = history
        self.health = health or (lambda: {})
        self.silences = silences or (lambda: [])
        self.windows_shown = windows_shown

    def route(self, path: str) -> Answer | None:
        url = urlsplit(path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path in STATIC:
            name, ctype = STATIC[url.path]
            return 200, ctype, (ASSETS / name).read_bytes()
        if url.path == "/status/version":
            return 200, "application/json", orjson.dumps({"version": self.history.version})
        if url.path == "/status/main":
            return 200, "text/html; charset=utf-8", self.main(q).encode()
        if url.path in ("/", "/status"):
            return 200, "text/html; charset=utf-8", self.page(q).encode()
        if url.path == "/favicon.ico":
            return 204, "image/x-icon", b""
        return None

    # -- the page -------------------------------------------------------------------------

    def page(self, q: dict[str, str]) -> str:
        return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                '<link rel="icon" href="data:,"><title>streamdrift status</title>'
                '<link rel="stylesheet" href="/static/style.css"></head><body>'
                f"<header><h1>streamdrift</h1><span class=\"muted\">status · version "
                f"{esc(__version__)}</span></header>"
                f'<main data-version="{self.history.version}">{self.main(q)}</main>'
                '<footer>updates by itself when a window closes or an alert arrives</footer>'
                '<script src="/static/status.js"></script></body></html>')

    def main(self, q: dict[str, str]) -> str:
        groups = self.history.groups()
        stamp = f'<span hidden data-version="{self.history.version}"></span>'
        if not groups:
            err = self.history.error
            return (stamp + '<section class="waiting"><h2>Waiting for the first window</h2>'
                    '<p class="muted">no window report on the reports topic yet'
                    + (f" — {esc(err)}" if err else "") + "</p></section>"
                    + self._health())
        keys = list(groups)
        names = [f"{m}|{v}" for m, v in keys]
        chosen = q.get("monitor") if q.get("monitor") in names else names[0]
        monitor, model = keys[names.index(chosen)]
        rs = groups[(monitor, model)][-self.windows_shown:]
        view = q.get("view") if q.get("view") in dict(VIEWS) else "overview"
        base = {"monitor": chosen}

        def link(**kw: str) -> str:
            return "/?" + urlencode({**base, **kw})

        tabs = "".join(f'<a class="{"on" if v == view else ""}" data-view="{v}" '
                       f'href="{esc(link(view=v))}">{t}</a>' for v, t in VIEWS)
        pick = "".join(f'<option value="{esc(n)}"{" selected" if n == chosen else ""}>'
                       f"{esc(n.replace('|', ' · '))}</option>" for n in names)
        head = (f'{stamp}<section class="top" data-monitor="{esc(monitor)}" '
                f'data-model="{esc(model)}"><nav class="tabs">{tabs}</nav> '
                f'<label class="muted">monitor · model version <select data-param="monitor">'
                f"{pick}</select></label></section>")
        warn = views.profile_warning(rs[-1])
        if warn:
            head += f'<p class="pill warning profile-mismatch">{esc(warn)}</p>'

        if view == "feature":
            body = self._feature(rs, q, link)
        elif view == "quality":
            body = self._quality(rs, q)
        elif view == "alerts":
            body = self._alerts(full=True, scope=(monitor, model))
        else:
            body = self._overview(rs, link)
        return head + body

    def _overview(self, rs: list[dict[str, Any]], link) -> str:
        last = rs[-1]
        cls, text = views.verdict(last)
        scope = (last.get("monitor", "?"), views.model_of(last))
        return (f'<section class="latest"><h2>Latest window {esc(views.when(last["window_start_ms"]))}'
                f' UTC <span class="muted">{esc(scope[0])} · model {esc(scope[1])}</span> '
                f'<span class="pill {PILL[cls]}">'
                f"{esc(text)}</span></h2>{views.windows_table(rs, n=8)}</section>"
                + self._alerts(full=False, scope=scope)
                + f'<section><h2>Drift over the last {len(rs)} windows</h2>'
                  '<p class="muted">effect size per window (KS D for numeric features and the '
                  "score, Jensen-Shannon distance for categorical ones); red: a drift check "
                  "of that feature flagged the window. Click a feature for its histogram."
                  "</p>"
                + views.drift_over_time(rs, lambda f: link(view="feature", feature=f))
                + "</section>" + self._health(last))

    def _window(self, rs: list[dict[str, Any]], q: dict[str, str]) -> dict[str, Any]:
        w = q.get("window", "")
        return next((r for r in rs if str(r["window_start_ms"]) == w), rs[-1])

    def _feature(self, rs: list[dict[str, Any]], q: dict[str, str], link) -> str:
        r = self._window(rs, q)
        feats = views.drift_features(rs)
        if not feats:
            return '<section><p class="muted">no drift features in these reports</p></section>'
        f = q.get("feature") if q.get("feature") in feats else \
            (views.most_drifted(r) or feats[0])
        fopts = "".join(f'<option{" selected" if x == f else ""}>{esc(x)}</option>'
                        for x in feats)
        wopts = "".join(f'<option value="{x["window_start_ms"]}"'
                        f'{" selected" if x is r else ""}>{esc(views.when(x["window_start_ms"]))}'
                        f'{" ✗" if views.flagged_features(x) else ""}</option>'
                        for x in reversed(rs))
        sub = [x for x in rs if x["window_start_ms"] <= r["window_start_ms"]] or rs
        return (f'<section class="feature" data-feature="{esc(f)}"><h2>{esc(f)}</h2>'
                f'<label class="muted">feature <select data-param="feature">{fopts}</select>'
                f'</label> <label class="muted">window <select data-param="window">{wopts}'
                f"</select></label>{views.histogram_of(r, f)}"
                '<p class="muted">numeric bins are the reference\'s 20-quantiles (each holds '
                "5% of the reference), so a drifted window shows as bars leaving the flat grey "
                "line; categorical: the reference categories and the unseen ones</p></section>"
                f'<section><h2>{esc(f)} over time</h2>'
                + views.drift_over_time(sub, only=f).replace(
                    'class="grid"', 'class="grid one"', 1) + "</section>")

    def _quality(self, rs: list[dict[str, Any]], q: dict[str, str]) -> str:
        r = self._window(rs, q)
        when = esc(views.short(r["window_start_ms"]))
        return (f'<section class="quality"><h2>Data quality <span class="muted">window {when}'
                f"</span></h2>{views.quality_rates(r)}</section>"
                f'<section class="fairness"><h2>Fairness <span class="muted">window {when}'
                f"</span></h2>{views.fairness(r)}</section>"
                f'<section class="performance"><h2>Performance</h2>{views.performance(rs)}'
                "</section>")

    def _alerts(self, full: bool, scope: tuple[str, str] | None = None) -> str:
        """Open alerts (and, ``full``, recent notifications) of ``scope`` = (monitor,
        model:version); silences hold for every version, so all are listed."""
        monitor, model = scope or (None, None)
        open_ = self.history.open_alerts(monitor, model)
        rows = "".join(
            f'<tr data-key="{esc(i["key"])}"><td><span class="pill {esc(i["severity"])}">'
            f'{esc(i["severity"])}</span></td><td>{esc(i["family"])}</td>'
            f'<td>{esc(i["check"])}</td><td>{esc(i["feature"])}</td>'
            f'<td class="num">{fmt(i.get("effect_size"))}</td>'
            f'<td>{esc(views.when(i["since_window_start_ms"]))}</td>'
            f'<td class="num">{i.get("bad_windows", "")}</td></tr>' for i in open_)
        table = ('<table class="alerts"><thead><tr><th>severity</th><th>family</th><th>check'
                 "</th><th>feature</th><th>effect</th><th>since (UTC)</th><th>bad windows</th>"
                 f"</tr></thead><tbody>{rows}</tbody></table>" if open_ else
                 '<p class="muted">no open alerts</p>')
        out = f'<section class="open-alerts"><h2>Open alerts ({len(open_)})</h2>{table}'
        now = int(time.time() * 1000)
        sil = [s for s in self.silences() if s.until_ms is None or s.until_ms > now]
        srows = "".join(
            f"<tr><td>{esc(s.monitor)}</td><td>{esc(s.family)}</td><td>{esc(s.check)}</td>"
            f"<td>{esc(s.feature)}</td><td>"
            + ("until removed" if s.until_ms is None else esc(views.when(s.until_ms)))
            + f"</td><td>{esc(s.reason)}</td><td>{esc(s.created_by)}</td></tr>" for s in sil)
        out += (f"<h3>Silences ({len(sil)})</h3>" + (
            "<table class=\"silences\"><thead><tr><th>monitor</th><th>family</th><th>check</th>"
            "<th>feature</th><th>until (UTC)</th><th>reason</th><th>by</th></tr></thead>"
            f"<tbody>{srows}</tbody></table>" if sil else '<p class="muted">none</p>'))
        if full:
            recent = self.history.alerts(monitor, model)[-30:][::-1]
            out += "<h3>Recent notifications</h3><table><thead><tr><th>window (UTC)</th>" \
                   "<th>kind</th><th>severity</th><th>keys</th></tr></thead><tbody>" + "".join(
                       f"<tr><td>{esc(views.when(a['window_start_ms']))}</td><td>"
                       f"{esc(a['kind'])}</td><td>{esc(a.get('severity', ''))}</td><td>"
                       + esc(", ".join(i["key"] for i in a["items"][:8]))
                       + "</td></tr>" for a in recent) + "</tbody></table>"
        return out + "</section>"

    def _health(self, last: dict[str, Any] | None = None) -> str:
        h = self.health() or {}
        stages = "".join(f'<span class="pill {"ok" if str(st).startswith("ok") else "warning"}">{esc(n)}: '
                         f"{esc(st)}</span> " for n, st in sorted(h.get("stages", {}).items()))
        lag = h.get("consumer_lag") or {}
        lag_txt = (", ".join(f"p{p}: {n:,}" for p, n in sorted(lag.items())) if lag else
                   "not measured in this process")
        rep_lag = (last or {}).get("quality", {}).get("consumer_lag")
        return ('<section class="health"><h2>Stage health</h2>'
                f"<p>{stages or '<span class=muted>no stage runs in this process</span>'}</p>"
                f"<p>consumer lag now: {esc(lag_txt)}"
                + (f" · at the last window's close: {rep_lag:,}" if rep_lag is not None else "")
                + (f" · {self.history.bad_messages} unreadable messages skipped"
                   if self.history.bad_messages else "") + "</p></section>")
