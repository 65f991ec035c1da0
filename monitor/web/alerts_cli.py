"""``streamdrift alerts list | silence | unsilence``: on-call's view of a running deployment.

``list`` reads the alerts topic (its last ``--last`` notifications per partition) and shows
the alert keys that are open now — fired and not resolved — with the silences that cover
them; ``--all`` adds the recent notifications. ``silence`` / ``unsilence`` write the shared
silences the monitor reads (the same store as ``streamdrift silence``). A table for people,
``--json`` for scripts.

>>> rows = [{"severity": "critical", "key": "m/ks/income", "effect_size": 0.31}]
>>> print(table(rows, [("SEVERITY", "severity"), ("KEY", "key"), ("EFFECT", "effect_size")]))
SEVERITY  KEY          EFFECT
critical  m/ks/income  0.31
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import orjson

from monitor.errors import StreamdriftError
from monitor.records import Silence
from monitor.web.charts import fmt
from monitor.web.history import History, read_to_end
from monitor.web.views import when

OPEN_COLUMNS = [("SEVERITY", "severity"), ("FAMILY", "family"), ("CHECK", "check"),
                ("FEATURE", "feature"), ("EFFECT", "effect_size"), ("SINCE (UTC)", "since"),
                ("WINDOWS", "bad_windows"), ("SILENCED", "silenced"), ("KEY", "key")]
SILENCE_COLUMNS = [("MONITOR", "monitor"), ("FAMILY", "family"), ("CHECK", "check"),
                   ("FEATURE", "feature"), ("UNTIL (UTC)", "until"), ("REASON", "reason"),
                   ("BY", "created_by")]


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return fmt(v)
    return "" if v is None else str(v)


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """Left-aligned columns as wide as their widest cell, two spaces apart."""
    cells = [[h for h, _ in columns]] + [[_cell(r.get(k)) for _, k in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in cells)


def open_alerts(client: dict[str, Any], topic: str, last: int) -> History:
    h = History(max_alerts=last)
    for value in read_to_end(client, topic, "topics.alerts", last=last):
        try:
            h.add_alert(orjson.loads(value))
        except orjson.JSONDecodeError:
            h.bad_messages += 1
    return h


def _silenced_by(item: dict[str, Any], silences: list[Silence], now: int) -> str:
    for s in silences:
        if s.covers(feature=item["feature"], check=item["check"], family=item["family"],
                    now_ms=now, monitor=item.get("monitor") or ""):
            return "until removed" if s.until_ms is None else f"until {when(s.until_ms)}"
    return ""


def list_alerts(cfg, client: dict[str, Any], store, *, as_json: bool, show_all: bool,
                last: int, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up per call: a default bound at import misses redirects
    now = int(time.time() * 1000)
    h = open_alerts(client, cfg.topics.alerts, last)
    silences = store.active(now)
    items = [i for i in h.open_alerts() if i.get("monitor") in (None, cfg.monitor)]
    rows = [{**i, "since": when(i["since_window_start_ms"]),
             "silenced": _silenced_by(i, silences, now)} for i in items]
    sil = [{**s.to_dict(), "until": "until removed" if s.until_ms is None else when(s.until_ms)}
           for s in silences]
    recent = h.alerts() if show_all else []
    if as_json:
        out.write(orjson.dumps({"monitor": cfg.monitor, "open": rows, "silences": sil,
                                **({"notifications": recent} if show_all else {})},
                               option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if rows:
        out.write(table(rows, OPEN_COLUMNS) + "\n")
    else:
        out.write(f"no open alerts for monitor {cfg.monitor}\n")
    if sil:
        out.write(f"\n{len(sil)} silence(s):\n" + table(sil, SILENCE_COLUMNS) + "\n")
    if show_all:
        out.write("\nrecent notifications:\n" + table(
            [{"window": when(a["window_start_ms"]), "kind": a["kind"],
              "severity": a.get("severity"), "keys": ", ".join(i["key"] for i in a["items"])}
             for a in recent],
            [("WINDOW (UTC)", "window"), ("KIND", "kind"), ("SEVERITY", "severity"),
             ("KEYS", "keys")]) + "\n")
    if h.bad_messages:
        out.write(f"({h.bad_messages} unreadable messages on {cfg.topics.alerts} skipped)\n")
    return 0


def parse_key(key: str | None, monitor: str) -> dict[str, str]:
    """An alert key as ``list`` prints it (``monitor/model:version/check/feature``; patterns
    allowed), ``monitor/check/feature`` or ``check/feature`` -> silence match fields. A
    silence holds for every version of the model (silences match monitor, check, feature).

    >>> parse_key("m/churn:v2/ks/income", "m"), parse_key("m/ks/income", "m")
    ({'check': 'ks', 'feature': 'income'}, {'check': 'ks', 'feature': 'income'})
    >>> parse_key("psi/*", "m")
    {'check': 'psi', 'feature': '*'}
    """
    if key is None:
        return {}
    parts = key.split("/")
    if len(parts) == 4:       # the model:version segment: silences hold for every version
        parts = [parts[0], *parts[2:]]
    if len(parts) == 3:
        if parts[0] not in (monitor, "*"):
            raise StreamdriftError(f"alert key {key!r} is of monitor {parts[0]!r}, the config "
                                   f"is monitor {monitor!r}")
        parts = parts[1:]
    if len(parts) != 2 or not all(parts):
        raise StreamdriftError(f"alert key {key!r}: expected monitor/model:version/check/"
                               "feature as `streamdrift alerts list` prints it, or check/feature")
    return {"check": parts[0], "feature": parts[1]}


def silence(cfg, store, a, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from monitor.config import parse_duration

    match = {"feature": a.feature, "check": a.check, "family": a.family,
             **parse_key(a.key, cfg.monitor)}
    if all(v == "*" for v in match.values()):
        raise StreamdriftError("alerts silence: name what to silence (an alert key, or "
                               "--feature / --check / --family); refusing to silence everything")
    try:
        ms = parse_duration(a.duration)
    except ValueError:
        raise StreamdriftError(f"--for: {a.duration!r} is not a duration; e.g. 30m, 2h, 1d"
                               ) from None
    if ms <= 0:
        raise StreamdriftError(f"--for: {a.duration!r} must be longer than zero")
    s = Silence(reason=a.reason, monitor=cfg.monitor, until_ms=int(time.time() * 1000) + ms,
                created_by=a.by, **match)
    store.add(s)
    if a.json:
        out.write(orjson.dumps(s.to_dict()).decode() + "\n")
    else:
        out.write(f"silenced {cfg.monitor}/{s.family}/{s.check}/{s.feature} until "
                  f"{when(s.until_ms)} UTC — {s.reason}\n")
    return 0


def unsilence(cfg, store, a, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    match = {"feature": a.feature, "check": a.check, "family": a.family,
             **parse_key(a.key, cfg.monitor)}
    n = store.remove(**match)
    if a.json:
        out.write(orjson.dumps({"removed": n}).decode() + "\n")
    else:
        out.write(f"{n} silence(s) removed\n" if n else
                  "no silence matched (see `streamdrift alerts list` for the silences)\n")
    return 0 if n else 1
