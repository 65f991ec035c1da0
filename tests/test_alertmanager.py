"""The Alertmanager sink against a real Alertmanager built from source, and the whole chain:
streamdrift -> Alertmanager (API v2) -> Alertmanager's own Slack receiver -> the Slack test
server's incoming webhook. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from monitor.dev.alertmanager import DevAlertmanager
from monitor.sinks.alertmanager import AlertmanagerSink
from tests.slack_server import SlackServer
from tests.test_slack_sink import scenario

pytestmark = pytest.mark.alertmanager

AM_CONFIG = """
route:
  receiver: slack
  group_by: [monitor]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: slack
    slack_configs:
      - api_url: HOOK
        channel: '#ml-oncall'
        send_resolved: true
        title: '[{{ .Status }}] {{ .CommonLabels.monitor }}'
        text: '{{ range .Alerts }}{{ .Status }} {{ .Labels.alertname }} {{ .Labels.feature }} {{ .Labels.severity }}: {{ .Annotations.summary }}; {{ end }}'
"""

# the loan monitor's config names its model and version: every alert carries them
LOAN = [dataclasses.replace(a, model="loan-model", model_version="2026-11-30")
        for a in scenario("loan-default")]
FRAUD = scenario("fraud")


def wait_for(what, timeout_s: float, step_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(step_s)
    raise AssertionError(f"not within {timeout_s}s")


def open_alerts(am: DevAlertmanager) -> dict[tuple[str, str], dict]:
    return {(a["labels"]["monitor"], a["labels"]["feature"]): a
            for a in am.get("/api/v2/alerts")}


def slack_posts(server: SlackServer) -> list[tuple[str, str]]:
    """(title, text) of each notification Alertmanager's Slack receiver sent."""
    out = []
    for p in server.webhook_posts:
        for att in p.get("attachments") or []:
            out.append((att.get("title", ""), att.get("text", "")))
    return out


@pytest.fixture()
def chain(tmp_path):
    server = SlackServer().start()
    am = DevAlertmanager(AM_CONFIG.replace("HOOK", server.webhook_url),
                         storage=tmp_path / "am").start()
    sink = AlertmanagerSink(am.url, status_url="http://127.0.0.1:9108",
                            labels={"team": "ml"}, resend_interval_s=1.0, backoff_s=0.2)
    yield server, am, sink
    sink.close()
    am.stop()
    server.stop()


def test_alerts_arrive_group_by_monitor_survive_a_restart_and_resolve(chain):
    server, am, sink = chain
    sink.write(LOAN[:2])                 # f0 + f2 firing, then f1
    sink.write(FRAUD[:1])                # f0 + f2 firing
    got = wait_for(lambda: len(a := open_alerts(am)) == 5 and a, 10)
    f0 = got[("loan-default", "f0")]
    assert {k: f0["labels"][k] for k in ("alertname", "monitor", "model", "version", "feature",
                                         "slice", "family", "severity", "check", "team")} == {
        "alertname": "FeatureDrift", "monitor": "loan-default", "model": "loan-model",
        "version": "2026-11-30", "feature": "f0", "slice": "all", "family": "numeric_drift",
        "severity": "critical", "check": "ks", "team": "ml"}
    assert f0["annotations"]["summary"].startswith("ks drift on f0: effect 0.3")
    fraud = got[("fraud", "f0")]["labels"]   # no model: section: the monitor, unversioned
    assert (fraud["model"], fraud["version"]) == ("fraud", "unversioned")
    assert json.loads(f0["annotations"]["statistics"])["n_window"] == 5000
    assert f0["annotations"]["status_page"].startswith("http://127.0.0.1:9108/status?")
    assert f0["startsAt"].startswith("1970-01-01T00:01:00")   # first bad window (event time)
    # grouped by monitor: one group, and one Slack notification, per monitor
    groups = {g["labels"]["monitor"]: len(g["alerts"]) for g in am.get("/api/v2/alerts/groups")}
    assert groups == {"loan-default": 3, "fraud": 2}
    # (startsAt lies far in the past here, so Alertmanager flushes a new group at once and
    # the group's later alerts follow in a second notification)
    wait_for(lambda: [t for t in slack_posts(server) if t[0] == "[firing] loan-default"
                      and all(f"FeatureDrift {f} " in t[1] for f in ("f0", "f1", "f2"))], 20)
    wait_for(lambda: [t for t in slack_posts(server) if t[0] == "[firing] fraud"
                      and all(f"FeatureDrift {f} " in t[1] for f in ("f0", "f2"))], 20)
    assert not [t for t in slack_posts(server) if "fraud" in t[0] and "loan" in t[0]]

    # Alertmanager restarts: its alerts were in memory; the sink's re-send brings every one
    # back with its original startsAt (its notification log and silences are on
    # --storage.path)
    before = {k: a["startsAt"] for k, a in open_alerts(am).items()}
    am.restart()
    after = wait_for(lambda: len(a := open_alerts(am)) == 5 and a, 15)
    assert {k: a["startsAt"] for k, a in after.items()} == before
    assert (am.storage / "data" / "nflog").exists()

    # every alert of "fraud" resolves (re-fires and resolves again on the way)
    sink.write(FRAUD[1:])
    wait_for(lambda: {m for m, _ in open_alerts(am)} == {"loan-default"}, 10)
    resolved = wait_for(lambda: [t for t in slack_posts(server)
                                 if t[0] == "[resolved] fraud"], 20)
    assert all(f"resolved FeatureDrift {f}" in resolved[-1][1] for f in ("f0", "f1", "f2"))
    # "loan-default" is still firing: the re-sends kept it alive well past its first endsAt
    time.sleep(5)
    assert len(open_alerts(am)) == 3


def test_escalation_replaces_the_warning_and_a_restarted_sink_keeps_resending(chain):
    _, am, sink = chain
    sink.write(LOAN[:2])
    escalated = next(a for a in LOAN if a.reason == "escalated")      # f1 becomes critical
    sink.write([escalated])
    got = wait_for(lambda: len(a := open_alerts(am)) == 3 and a, 10)
    assert got[("loan-default", "f1")]["labels"]["severity"] == escalated.items[0].severity
    sink.close()
    fresh = AlertmanagerSink(am.url, resend_interval_s=1.0)
    assert fresh.restore("loan-default") == 3
    am.restart()
    assert len(wait_for(lambda: open_alerts(am), 15)) == 3
    fresh.close()


def test_alertmanager_down_keeps_the_alert(chain):
    from monitor.sinks import SinkUnavailable

    _, am, sink = chain
    am.stop()
    sink.retries = 1
    with pytest.raises(SinkUnavailable) as e:
        sink.write(LOAN[:1])
    assert e.value.kind == "transport" and not sink.health.failing
    am.start()
    sink.write(LOAN[:1])
    assert len(wait_for(lambda: open_alerts(am), 10)) == 2
