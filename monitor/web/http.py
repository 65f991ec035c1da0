"""``/health`` and Prometheus ``/metrics`` on a small HTTP server in a background thread.

Metrics are read from the running stages when scraped (collectors, not counters updated in
the data path), so the hot path pays nothing for them.

``/health`` answers from the process's :class:`monitor.supervise.Health` in every ``--stage``
mode: ``{"status": "ok", ...}`` with 200, or ``{"status": "failing", "problems": {stage:
what}}`` with 503 naming each stage that is starting, restarting, failed or waiting on Kafka,
with its last error. ``/metrics`` adds stage restarts, delivery failures (by kind of write
and Kafka error) and stage errors by kind (sink stages included).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class StageCollector:
    """Turns the stages' plain counters into Prometheus metrics at scrape time."""

    def __init__(self, monitor: str, source: Callable[[], Any] | None,
                 reports: Callable[[], dict[str, Any]] | None,
                 sinks: Callable[[], list[Any]] | None = None, health: Any = None,
                 deliveries: Any = None) -> None:
        self.monitor = monitor
        self.source = source
        self.reports = reports
        self.sinks = sinks   # -> [monitor.sinks.SinkHealth]
        self.health = health  # monitor.supervise.Health
        self.deliveries = deliveries  # monitor.checked_producer.DeliveryStats

    def collect(self):
        yield from self._robustness()
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
            fb = CounterMetricFamily("streamdrift_decode_fallback_messages", "JSON messages the "
                                     "compiled decoder left to the general path",
                                     labels=["monitor"])
            fb.add_metric([m], getattr(s, "decode_fallback_messages", 0))
            yield fb
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


    def _robustness(self):
        m = self.monitor
        if self.health is not None:
            r = CounterMetricFamily("streamdrift_stage_restarts", "stage restarts after a "
                                    "failure", labels=["monitor", "stage"])
            e = CounterMetricFamily("streamdrift_stage_errors", "stage failures by exception "
                                    "kind (sink stages: sink errors)",
                                    labels=["monitor", "stage", "kind"])
            up = GaugeMetricFamily("streamdrift_stage_healthy", "1 when the stage runs "
                                   "without a problem", labels=["monitor", "stage"])
            problems = self.health.problems()
            for name, s in sorted(self.health.stages.items()):
                r.add_metric([m, name], s.restarts)
                up.add_metric([m, name], 0 if name in problems else 1)
                for kind, n in sorted(s.errors_by_kind.items()):
                    e.add_metric([m, name, kind], n)
            yield from (r, e, up)
        if self.deliveries is not None:
            d = CounterMetricFamily("streamdrift_delivery_failures", "writes Kafka refused, "
                                    "by kind of write and error", labels=["monitor", "kind",
                                                                          "error"])
            for (kind, err), n in sorted(self.deliveries.failures.items()):
                d.add_metric([m, kind, err], n)
            yield d
            w = GaugeMetricFamily("streamdrift_delivery_wait_seconds", "longest time a write "
                                  "has been waiting for Kafka's acknowledgement",
                                  labels=["monitor"])
            w.add_metric([m], self.deliveries.longest_wait_s())
            yield w


def serve(host: str, port: int, collector: StageCollector,
          healthy: Callable[[], bool] | None = None,
          problems: Callable[[], dict[str, str]] | None = None,
          routes: Callable[[str], tuple[int, str, bytes] | None] | None = None,
          health: Any = None) -> ThreadingHTTPServer:
    """``problems() -> {component: last error}``: anything in it fails ``/health`` (503,
    ``{"status": "failing", "failing": {...}}``), e.g. a sink that got a permanent answer.
    ``health`` (a :class:`monitor.supervise.Health`) adds every stage's problems (and its
    own extra checks) to that answer, with each stage's state, restarts and last error.
    ``routes(path)`` answers the paths this module does not (the status page,
    :class:`monitor.web.status.StatusPage`): ``(status, content type, body)`` or None."""
    registry = CollectorRegistry()
    registry.register(collector)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/metrics"):
                body, ctype, code = generate_latest(registry), "text/plain; version=0.0.4", 200
            elif self.path.startswith("/health"):
                ok = healthy is None or healthy()
                failing = problems() if problems is not None else {}
                d: dict[str, Any] = {}
                if health is not None:
                    d = health.to_dict()
                    failing = {**failing, **{k: v for k, v in d["problems"].items()
                                             if v not in ("starting", "not ready")}}
                    ok = ok and not d["problems"]
                if failing:
                    d.update(status="failing", failing=failing)
                else:
                    d["status"] = "ok" if ok else "starting"
                body = orjson.dumps(d)
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
