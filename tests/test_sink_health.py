"""A sink that gets a permanent answer shows it in /health and /metrics of a running monitor.

`streamdrift run --stage sinks` against the real broker and the Slack test server, with a
token file holding a revoked token: /health fails within seconds naming the sink and
``invalid_auth``, /metrics counts the error, nothing is posted and nothing is lost; once the
file holds the right token, every alert is delivered exactly once and /health is ok again.
Meanwhile the same monitor's Alertmanager sink (a real Alertmanager) got every alert: one
sink's failure holds back no other.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest
import yaml

from monitor import config as C
from monitor.dev.alertmanager import DevAlertmanager
from tests.e2e_harness import MonitorProcess
from tests.slack_server import SlackServer
from tests.test_slack_sink import ALERTS, TOKEN, assert_delivered_once

pytestmark = [pytest.mark.kafka, pytest.mark.alertmanager]
AM_CONFIG = "route: {receiver: none, group_by: [monitor]}\nreceivers: [{name: none}]\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def wait_for(what, timeout_s: float, step_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(step_s)
    raise AssertionError(f"not within {timeout_s}s")


def test_revoked_token_fails_health_keeps_alerts_and_resumes(tmp_path, kafka_bootstrap,
                                                           topic_factory, produce):
    server = SlackServer(token=TOKEN).start()
    am = DevAlertmanager(AM_CONFIG, storage=tmp_path / "am").start()
    token_file = tmp_path / "slack-token"
    token_file.write_text("xoxb-revoked\n")
    port = free_port()
    d = {"monitor": f"sinkhealth-{port}", "kafka": {"bootstrap": kafka_bootstrap,
                                                     "session_timeout_ms": 6000},
         "stream": {"topic": topic_factory(1, prefix="events")},
         "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
         "reference": {"profile": str(tmp_path / "unused.profile")},
         "slack": {"channel": "#ml-oncall", "token_file": str(token_file),
                   "base_url": server.base_url},
         "alertmanager": {"url": am.url, "resend_interval": "2s"},
         "triggers": {"enabled": False},
         "http": {"host": "127.0.0.1", "port": port}}
    cfg_path = tmp_path / "monitor.yaml"
    cfg_path.write_text(yaml.safe_dump(d))
    alerts_topic = C.from_dict(d).topics.alerts
    mon = MonitorProcess(cfg_path, tmp_path / "monitor.log", stage="sinks")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(base + "/health")[0] == 200, 60)
        produce(alerts_topic, [a.to_dict() for a in ALERTS[:3]], key=b"m")
        # the first answer decides: no retry budget is spent before health says so
        _, body = wait_for(lambda: (r := get(base + "/health"))[0] == 503 and r, 30)
        failing = json.loads(body)["failing"]
        assert list(failing) == ["sink-slack"] and "invalid_auth" in failing["sink-slack"]
        assert TOKEN not in body and "xoxb-revoked" not in body
        metrics = get(base + "/metrics")[1]
        assert f'streamdrift_sink_up{{monitor="{d["monitor"]}",sink="slack"}} 0.0' in metrics
        assert 'kind="invalid_auth",monitor=' in metrics
        assert not server.messages and mon.alive()
        # Alertmanager got them all the while: f0 and f1 open, f2 fired and resolved
        wait_for(lambda: {a["labels"]["feature"] for a in am.get("/api/v2/alerts")}
                 == {"f0", "f1"}, 30)
        token_file.write_text(TOKEN + "\n")
        wait_for(lambda: len(server.messages) == 3, 60)
        wait_for(lambda: get(base + "/health")[0] == 200, 10)
        assert_delivered_once(server, ALERTS[:3])
    finally:
        mon.stop()
        server.stop()
        am.stop()
    log = (tmp_path / "monitor.log").read_text()
    assert TOKEN not in log and "xoxb-revoked" not in log
