"""``/health`` and Prometheus ``/metrics`` on a small HTTP server in a background thread.

Metrics are read from the running stages when scraped (collectors, not counters updated in
the data path), so the hot path pays nothing for them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class StageCollector:
    """Turns the stages' plain counters into Prometheus metrics at scrape time."""

    def __init__(self, monitor: str, source: Callable[[], Any] | None,
                 reports: Callable[[], dict[str, Any]] | None,
                 sinks: Callable[[], list[Any]] | None = None) -> None:
        self.monitor = monitor
        self.source = source
        self.reports = reports
        self.sinks = sinks   # -> [monitor.sinks.SinkHealth]

    def collect(self):
        m = self.monitor
        if self.source is not None and (s := self.source()) is not None:
            c = CounterMetricFamily("streamdrift_events_in", "events absorbed by stage 1",
                                    labels=["monitor"])
            c.add_metric([m], s.events_in)
            yield c
            b = CounterMetricFamily("streamdrift_bad_events", "messages sent to the dead-letter "
                                    "topic, by reason", labels=["monitor", "reason"])
            for reason, n in sorted(s.bad_events.items()):
                b.add_metric([m, reason], n)
            yield b
            lag = GaugeMetricFamily("streamdrift_consumer_lag", "messages not yet absorbed",
                                    labels=["monitor", "partition"])
            for p, n in sorted(s.consumer_lag.items()):
                lag.add_metric([m, str(p)], n)
            yield lag
            wd = GaugeMetricFamily("streamdrift_watermark_delay_seconds",
                                   "wall clock minus the partition's watermark",
                                   labels=["monitor", "partition"])
            for p, ms in sorted(s.watermark_delay_ms.items()):
                wd.add_metric([m, str(p)], ms / 1000.0)
            yield wd
        if self.reports is not None:
            r = self.reports()
            w = CounterMetricFamily("streamdrift_windows_closed", "windows closed and reported",
                                    labels=["monitor"])
            w.add_metric([m], r.get("windows_closed", 0))
            yield w
            d = GaugeMetricFamily("streamdrift_drift_score", "effect size of the last closed "
                                  "window, per feature and check", labels=["monitor", "check",
                                                                           "feature"])
            for (check, feature), v in sorted(r.get("scores", {}).items()):
                d.add_metric([m, check, feature], v)
            yield d
            f = GaugeMetricFamily("streamdrift_alerts_firing", "alert keys firing after the "
                                  "last closed window, by severity", labels=["monitor",
                                                                            "severity"])
            for sev, n in sorted(r.get("alerts_firing", {}).items()):
                f.add_metric([m, sev], n)
            yield f
        if self.sinks is not None:
            yield from self._sink_metrics(m, self.sinks())

    @staticmethod
    def _sink_metrics(m: str, sinks: list[Any]):
        up = GaugeMetricFamily("streamdrift_sink_up", "1 while the sink delivers or retries "
                               "transient errors, 0 after a permanent answer (bad token, "
                               "unknown channel, 4xx)", labels=["monitor", "sink"])
        sent = CounterMetricFamily("streamdrift_sink_delivered", "alerts the sink delivered",
                                   labels=["monitor", "sink"])
        err = CounterMetricFamily("streamdrift_sink_errors", "sink errors by kind "
                                  "(invalid_auth, channel_not_found, http_503, transport, ...)",
                                  labels=["monitor", "sink", "kind"])
        for h in sinks:
            up.add_metric([m, h.name], 0.0 if h.failing else 1.0)
            sent.add_metric([m, h.name], h.delivered)
            for kind, n in sorted(h.errors.items()):
                err.add_metric([m, h.name, kind], n)
        yield from (up, sent, err)


def serve(host: str, port: int, collector: StageCollector, healthy: Callable[[], bool],
          problems: Callable[[], dict[str, str]] | None = None,
          routes: Callable[[str], tuple[int, str, bytes] | None] | None = None
          ) -> ThreadingHTTPServer:
    """``problems() -> {component: last error}``: anything in it fails ``/health`` (503,
    ``{"status": "failing", "failing": {...}}``), e.g. a sink that got a permanent answer.
    ``routes(path)`` answers the paths this module does not (the status page,
    :class:`monitor.web.status.StatusPage`): ``(status, content type, body)`` or None."""
    registry = CollectorRegistry()
    registry.register(collector)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's API
            if self.path.startswith("/metrics"):
                body, ctype, code = generate_latest(registry), "text/plain; version=0.0.4", 200
            elif self.path.startswith("/health"):
                ok = healthy()
                failing = problems() if problems is not None else {}
                if failing:
                    body = json.dumps({"status": "failing", "failing": failing}).encode()
                else:
                    body = b'{"status":"ok"}' if ok else b'{"status":"starting"}'
                ctype, code = "application/json", 200 if ok and not failing else 503
            elif routes is not None and (hit := routes(self.path)) is not None:
                code, ctype, body = hit
            else:
                body, ctype, code = b"not found", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep scrapes out of the logs
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="streamdrift-http", daemon=True).start()
    return server
