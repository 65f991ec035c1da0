"""Block Kit for alerts: what drifted, by how much, in which window, against which profile.

>>> from monitor.records import Alert, AlertItem
>>> item = AlertItem(key="m/ks/age", check="ks", family="numeric_drift", feature="age",
...     severity="critical", statistic=0.31, p_value=1e-12, effect_size=0.31, floor=0.1,
...     level=5e-4, n_window=5000, n_reference=50000, since_window_start_ms=0, bad_windows=2)
>>> a = Alert("sd-" + "0" * 24, "firing", "new", "loan-default", 0, 60_000, "prof-1", "0.1.0",
...     "critical", (item,), None, False, "bonferroni", 0.01, 20)
>>> text, blocks = render(a, runbook_url="https://wiki/runbooks/{monitor}")
>>> text
'[CRITICAL] loan-default: ks drift on age, window 1970-01-01 00:00–00:01 UTC'
>>> blocks[0]["text"]["text"]
':red_circle: CRITICAL — loan-default: 1 check firing'

Names that come from the data (features, groups, categories, anything in an item's
``detail``) are escaped for mrkdwn, so a feature called ``<!channel>`` cannot ping a
channel and ``<https://evil|click>`` is no link (Slack's rule: ``&``, ``<``, ``>`` as entities):

>>> escape("<!channel> & <https://x.example|click>")
'&lt;!channel&gt; &amp; &lt;https://x.example|click&gt;'
"""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from typing import Any

from monitor.records import Alert, AlertItem

MAX_ITEMS = 10
MAX_DETAIL = 3
RESOLVED_MARK = ":white_check_mark: Resolved"


def escape(s: object) -> str:
    """Text for mrkdwn that Slack shows as written: no mentions, links or entities."""
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(s: object, limit: int = 120) -> str:
    """A name in a code span: escaped, backticks (which would end the span) replaced."""
    text = str(s)
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return "`" + escape(text.replace("`", "'")) + "`"


def window_text(start_ms: int, end_ms: int) -> str:
    s = _dt.datetime.fromtimestamp(start_ms / 1000, _dt.timezone.utc)
    e = _dt.datetime.fromtimestamp(end_ms / 1000, _dt.timezone.utc)
    return f"{s:%Y-%m-%d %H:%M}–{e:%H:%M} UTC"


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


def _item_line(i: AlertItem) -> str:
    what = {"numeric_drift": "drift", "categorical_drift": "drift", "prediction_drift":
            "prediction drift", "quality": "data quality", "fairness": "fairness",
            "performance": "performance"}.get(i.family, i.family)
    parts = [f"*{code(i.feature)}* — {escape(i.check)} {escape(what)} ({escape(i.severity)})",
             f"statistic {_num(i.statistic)} · effect {_num(i.effect_size)} "
             f"(floor {_num(i.floor)})"]
    if i.p_value is not None:
        parts[-1] += f" · p {_num(i.p_value)} (level {_num(i.level)})"
    parts[-1] += f" · n {i.n_window:,} vs {i.n_reference:,}"
    shown = [(k, v) for k, v in sorted(i.detail.items()) if isinstance(v, str)][:MAX_DETAIL]
    if shown:
        parts.append(" · ".join(f"{escape(k)} {code(v, 80)}" for k, v in shown))
    if i.bad_windows:
        parts.append(f"bad for {i.bad_windows} window(s) since "
                     f"{window_text(i.since_window_start_ms, i.since_window_start_ms)[:16]} UTC")
    return "\n".join(parts)


def _runbook(url: str | None, a: Alert) -> str | None:
    if not url:
        return None
    first = a.items[0]

    class Safe(dict):
        def __missing__(self, k: str) -> str:
            return "{" + k + "}"

    def q(v: str) -> str:  # data-borne names cannot leave the URL's path segment
        return urllib.parse.quote(v, safe="")

    return url.format_map(Safe(monitor=q(a.monitor), check=q(first.check),
                               feature=q(first.feature), family=q(first.family)))


def render(a: Alert, runbook_url: str | None = None,
           mention: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of one alert event."""
    sev = a.severity.upper()
    icon = ":red_circle:" if a.severity == "critical" else ":large_orange_circle:"
    win = window_text(a.window_start_ms, a.window_end_ms)
    first = a.items[0]
    more = f" (+{len(a.items) - 1} more)" if len(a.items) > 1 else ""
    kind = {"firing": "", "update": " still firing" if a.reason == "repeat" else " escalated",
            "resolved": " resolved"}[a.kind]
    if a.kind == "resolved":
        icon, title = ":white_check_mark:", f"Resolved — {a.monitor}: {len(a.items)} check(s) healthy"
        text = f"[RESOLVED] {escape(a.monitor)}: {escape(first.check)} on " \
               f"{escape(first.feature)}{more}, window {win}"
    else:
        n = len(a.items)
        title = f"{icon} {sev} — {a.monitor}: {n} check{'s' if n > 1 else ''}{kind or ' firing'}"
        text = f"[{sev}] {escape(a.monitor)}: {escape(first.check)} {kind.strip() or 'drift'} " \
               f"on {escape(first.feature)}{more}, window {win}"
        icon = ""
    header = (f"{icon} {title}" if icon else title)[:150]
    # the mention pages: only a critical alert that is new or just escalated
    page = a.severity == "critical" and (a.kind == "firing" or a.reason == "escalated")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"{(mention + ' ') if mention and page else ''}Model {code(a.model_key)}"
            + (" was replaced by a new version: its alerts are closed."
               if a.reason == "superseded" else "")
            + f" · window *{win}* against reference profile {code(a.profile_id)}."}},
    ]
    for i in a.items[:MAX_ITEMS]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _item_line(i)}})
    if len(a.items) > MAX_ITEMS:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       f"…and {len(a.items) - MAX_ITEMS} more in the alert event"}]})
    ctx = (f"{a.tests_in_window} tests share a family-wise level of {a.family_level:g} "
           f"({escape(a.correction)}) · monitor {escape(a.monitor_version)} · alert "
           f"{code(a.alert_id)}")
    link = _runbook(runbook_url, a)
    if link:
        ctx = f"<{escape(link).replace('|', '%7C')}|Run-book> · " + ctx
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": ctx}]})
    return text, blocks


def mark_resolved(text: str, blocks: list[dict[str, Any]],
                  window: str) -> tuple[str, list[dict[str, Any]]]:
    """The root message edited to say its thread is resolved (idempotent)."""
    if blocks and blocks[0].get("type") == "context" and RESOLVED_MARK in str(blocks[0]):
        return text, blocks
    mark = {"type": "context", "elements": [{"type": "mrkdwn",
            "text": f"{RESOLVED_MARK} at window {window}"}]}
    return f"[RESOLVED] {text}", [mark, *blocks]
