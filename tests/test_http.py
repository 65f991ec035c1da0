"""/health and /metrics answer over real HTTP, from the stages' own counters."""

from __future__ import annotations

import urllib.error
import urllib.request

from monitor.web.http import StageCollector, serve
from monitor.stage1.source import SourceStats


def test_metrics_and_health():
    stats = SourceStats(events_in=1234, bad_events={"malformed": 3},
                        consumer_lag={0: 7, 1: 0}, watermark_delay_ms={0: 1500})
    reports = {"windows_closed": 5, "scores": {("ks", "income"): 0.25}}
    ready = {"ok": False}
    server = serve("127.0.0.1", 0, StageCollector("loan", lambda: stats, lambda: reports),
                   healthy=lambda: ready["ok"])
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        try:
            urllib.request.urlopen(base + "/health")
            raise AssertionError("expected 503 while starting")
        except urllib.error.HTTPError as e:
            assert e.code == 503
        ready["ok"] = True
        assert urllib.request.urlopen(base + "/health").read() == b'{"status":"ok"}'
        text = urllib.request.urlopen(base + "/metrics").read().decode()
        assert 'streamdrift_events_in_total{monitor="loan"} 1234.0' in text
        assert 'streamdrift_bad_events_total{monitor="loan",reason="malformed"} 3.0' in text
        assert 'streamdrift_consumer_lag{monitor="loan",partition="0"} 7.0' in text
        assert 'streamdrift_watermark_delay_seconds{monitor="loan",partition="0"} 1.5' in text
        assert 'streamdrift_windows_closed_total{monitor="loan"} 5.0' in text
        assert 'streamdrift_drift_score{check="ks",feature="income",monitor="loan"} 0.25' in text
    finally:
        server.shutdown()
