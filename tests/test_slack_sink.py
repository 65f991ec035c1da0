"""The real slack-sdk client against a local Slack-compatible server that misbehaves on cue.

Every test ends in the same assertion: each alert id is in the channel exactly once, replies
sit in the thread of the firing message they belong to, and per alert key the channel shows
firing -> (updates) -> resolved in that order, resolving exactly once per firing.
"""

from __future__ import annotations

import io
import logging
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from monitor.records import Alert, CheckResult, WindowReport
from monitor.sinks import SinkUnavailable
from monitor.sinks.delivery import AlertDelivery
from monitor.sinks.slack import SlackSink, SlackWebhookSink
from monitor.stage2.alerts import AlertPolicy
from tests.slack_server import SlackServer

TOKEN = "xoxb-1234567890-streamdrift-TEST-s3cr3t"
ROOT = Path(__file__).resolve().parents[1]
MIN = 60_000

# (feature -> effect per window): grouping, escalation, repeat, re-firing
PATTERNS = {
    "f0": [0, .3, .3, .3, .3, .3, 0, 0, 0, 0, 0, 0, 0, 0],
    "f1": [0, 0, .15, .15, .15, .15, .5, .5, .5, .5, 0, 0, 0, 0],
    "f2": [0, .3, .3, .3, 0, 0, .3, .3, .3, 0, 0, 0, 0, 0],
    "f3": [0] * 14,
}


def scenario(monitor: str = "loan-default") -> list[Alert]:
    policy = AlertPolicy(confirm_windows=2, resolve_windows=2, repeat_interval_ms=3 * MIN)
    out = []
    for i in range(14):
        checks = [CheckResult(check="ks", family="numeric_drift", feature=f, statistic=e[i],
                              p_value=1e-9 if e[i] else 0.4, effect_size=e[i], n_window=5000,
                              n_reference=50_000, sufficient=True) for f, e in PATTERNS.items()]
        r = WindowReport(monitor, i * MIN, (i + 1) * MIN, "profile-7f3a", 5000, 0, 0, [0], {},
                         checks, False, "0.1.0")
        out += policy.update(r).alerts
    return out


ALERTS = scenario()


def test_scenario_covers_the_lifecycle():
    assert [(a.window_start_ms // MIN, a.kind, a.reason, [k[-2:] for k in a.keys])
            for a in ALERTS] == [
        (2, "firing", "new", ["f0", "f2"]), (3, "firing", "new", ["f1"]),
        (5, "resolved", "resolved", ["f2"]), (5, "update", "repeat", ["f0"]),
        (6, "update", "escalated", ["f1"]), (7, "resolved", "resolved", ["f0"]),
        (7, "firing", "new", ["f2"]), (9, "update", "repeat", ["f1"]),
        (10, "resolved", "resolved", ["f2"]), (11, "resolved", "resolved", ["f1"])]


def _ts(ts: str) -> tuple[int, int]:
    a, b = ts.split(".")
    return int(a), int(b)


def assert_delivered_once(server: SlackServer, alerts: list[Alert]) -> None:
    by_id = defaultdict(list)
    for m in server.messages:
        by_id[((m.metadata or {}).get("event_payload") or {}).get("alert_id")].append(m)
    assert {k: len(v) for k, v in by_id.items()} == {a.alert_id: 1 for a in alerts}
    msg = {k: v[0] for k, v in by_id.items()}
    for a in alerts:
        m = msg[a.alert_id]
        assert m.thread_ts == (None if a.kind == "firing" else msg[a.thread_alert_id].ts)
    per_key: dict[str, list[tuple[tuple[int, int], str]]] = defaultdict(list)
    for a in alerts:
        for k in a.keys:
            per_key[k].append((_ts(msg[a.alert_id].ts), a.kind))
    for k, events in per_key.items():
        assert [e[1] for e in sorted(events)] == [e[1] for e in events], k   # in order per key
        text = "".join({"firing": "F", "update": "U", "resolved": "R"}[e[1]] for e in events)
        assert re.fullmatch(r"(FU*R)*(FU*)?", text), (k, text)  # each firing resolves once
    # roots whose thread is fully resolved were edited to say so
    for a in alerts:
        if a.kind == "resolved" and a.thread_resolved:
            assert "Resolved" in str(msg[a.thread_alert_id].blocks[0])


def deliver_all(sink, alerts: list[Alert]) -> None:
    """What the delivery loop does, without a broker: offer each alert until accepted."""
    for a in alerts:
        while True:
            try:
                sink.write([a])
                break
            except SinkUnavailable as e:
                time.sleep(min(e.retry_in_s, 0.5))


@pytest.fixture()
def server():
    s = SlackServer(token=TOKEN).start()
    yield s
    s.stop()


def make_sink(server: SlackServer, **kw) -> SlackSink:
    args = dict(base_url=server.base_url, runbook_url="https://wiki.example.com/rb/{monitor}#{feature}",
                timeout_s=1.0, retries=6, backoff_base_s=0.05, backoff_cap_s=0.4)
    return SlackSink(TOKEN, "#ml-oncall", **{**args, **kw})


def test_block_kit_says_what_drifted_by_how_much_where_and_against_what(server):
    deliver_all(make_sink(server), ALERTS)
    assert_delivered_once(server, ALERTS)
    assert all(r.authorized for r in server.requests)
    first = server.top_level()[0]
    shown = str(first.blocks)
    for needed in ("f0", "f2", "ks", "statistic 0.3", "effect 0.3", "p 1.0e-09", "level 0.0025",
                   "profile-7f3a", "1970-01-01 00:02–00:03 UTC",
                   "https://wiki.example.com/rb/loan-default#f0", ALERTS[0].alert_id,
                   "Model `loan-default:unversioned`"):
        assert needed in shown, needed
    # posted as critical, edited once when its thread resolved
    assert first.history[0][0].startswith("[CRITICAL] loan-default: ks drift on f0 (+1 more)")
    assert first.text.startswith("[RESOLVED] [CRITICAL]") and first.edited == 1
    replies = server.replies(first.ts)
    assert [r.text.split("]")[0] for r in replies] == ["[RESOLVED", "[CRITICAL", "[RESOLVED"]
    # a fresh sink (a restarted process) finds what was sent and sends nothing again
    n_posts = len(server.calls("chat.postMessage"))
    deliver_all(make_sink(server), ALERTS)
    assert len(server.calls("chat.postMessage")) == n_posts
    assert_delivered_once(server, ALERTS)


def test_429_waits_out_retry_after(server):
    server.fail("chat.postMessage", ("status", 429, 2), ("status", 429, 1))
    server.fail("conversations.history", ("status", 429, 1))
    deliver_all(make_sink(server), ALERTS[:2])
    assert_delivered_once(server, ALERTS[:2])
    for method in ("chat.postMessage", "conversations.history"):
        calls = server.calls(method)
        limited = [(prev, nxt) for prev, nxt in zip(calls, calls[1:]) if prev.status == 429]
        assert limited
        for prev, nxt in limited:
            wait = int(prev.fault.split()[-1])
            assert nxt.t - prev.answered_at >= wait, (method, nxt.t - prev.answered_at)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_with_backoff(server, status):
    server.fail("chat.postMessage", ("status", status), ("status", status))
    deliver_all(make_sink(server), ALERTS)
    assert_delivered_once(server, ALERTS)
    assert sum(r.status == status for r in server.calls("chat.postMessage")) == 2


def test_lost_answer_is_reconciled_not_repeated(server):
    """The server posts, then answers after the client's 1 s timeout: the retry handler finds
    the message by its metadata instead of posting it again."""
    server.fail("chat.postMessage", ("slow", 2.0))
    sink = make_sink(server)
    deliver_all(sink, ALERTS[:1])            # first one after start: looked up, then posted
    lookups = len(server.calls("conversations.history"))
    server.fail("chat.postMessage", ("slow", 2.0))
    deliver_all(sink, ALERTS[1:])
    assert_delivered_once(server, ALERTS)
    posts = server.calls("chat.postMessage")
    slow = [r for r in posts if r.fault.startswith("slow")]
    assert len(slow) == 2
    assert len(server.calls("conversations.history")) > lookups
    assert len(posts) == len(ALERTS)         # no post was sent twice


def test_connection_resets_before_and_after_acting(server):
    server.fail("chat.postMessage", ("reset", "after"), ("reset", "before"), ("reset", "after"))
    server.fail("conversations.replies", ("reset", "before"))
    deliver_all(make_sink(server), ALERTS)
    assert_delivered_once(server, ALERTS)


def test_random_fault_storm(server):
    rng = random.Random(5)
    faults = [("status", 500), ("status", 502), ("status", 503), ("status", 429, 1),
              ("slow", 1.5), ("reset", "before"), ("reset", "after")]
    for method in ("chat.postMessage", "conversations.history", "conversations.replies",
                   "chat.update"):
        server.fail(method, *[rng.choice(faults) for _ in range(6)])
    deliver_all(make_sink(server), ALERTS)
    assert_delivered_once(server, ALERTS)


def test_short_outage(server):
    sink = make_sink(server)
    deliver_all(sink, ALERTS[:2])
    server.down(4.0)
    t0 = time.monotonic()
    deliver_all(sink, ALERTS[2:])
    assert time.monotonic() - t0 >= 3.5
    assert_delivered_once(server, ALERTS)


def test_webhook_sink(server):
    server.fail("webhook", ("status", 429, 1), ("status", 503))
    sink = SlackWebhookSink(server.webhook_url, timeout_s=1.0, backoff_base_s=0.05,
                            backoff_cap_s=0.4)
    deliver_all(sink, ALERTS)
    deliver_all(sink, ALERTS)   # same ids again: nothing new
    assert len(server.webhook_posts) == len(ALERTS)
    calls = server.calls("webhook")
    assert calls[1].t - calls[0].answered_at >= 1
    assert "***" in repr(sink) and "s3cr3t" not in repr(sink)


def test_secrets_never_reach_logs_or_output(server, capfd):
    """slack-sdk logs webhook URLs at DEBUG/INFO and failed requests at ERROR: capture every
    logger at DEBUG while both sinks go through failures, then scan everything."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        server.fail("chat.postMessage", ("status", 500), ("reset", "after"), ("slow", 1.5))
        server.fail("webhook", ("status", 502), ("reset", "before"))
        sink = make_sink(server)
        deliver_all(sink, ALERTS[:3])
        hook = SlackWebhookSink(server.webhook_url, timeout_s=1.0, backoff_base_s=0.05)
        deliver_all(hook, ALERTS[:3])
        errors = []
        server.down(1.0)
        try:
            make_sink(server, retries=1).write(ALERTS[3:4])
        except SinkUnavailable as e:
            errors.append(str(e))
        time.sleep(1.2)
        print(repr(sink), repr(hook), errors)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    fd = capfd.readouterr()        # fd level: print(), sys.stderr and C-level writes
    logged = buf.getvalue()
    # the SDK did log the webhook request (its URL redacted) and the failures
    assert "Sending a request - url: ***" in logged
    assert "Failed to send a request to Slack API server" in logged
    for text in (logged, fd.out, fd.err):
        assert TOKEN not in text
        assert "s3cr3tHookPath" not in text


# -- through the alerts topic (real broker) -------------------------------------------------

CHILD = textwrap.dedent("""
    import os, sys, logging
    logging.basicConfig(level=logging.INFO)
    from monitor.sinks.delivery import AlertDelivery
    from monitor.sinks.slack import SlackSink
    bootstrap, topic, group, base_url = sys.argv[1:5]
    sink = SlackSink(os.environ["SD_TEST_SLACK_TOKEN"], "#ml-oncall", base_url=base_url,
                     timeout_s=20.0, retries=4, backoff_base_s=0.05, backoff_cap_s=0.4)
    # static membership: a restarted sink takes its partitions back without waiting for the
    # killed one's session to time out
    conf = {"bootstrap.servers": bootstrap, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500, "group.instance.id": "slack-sink-0"}
    n = AlertDelivery(conf, topic, group, sink, max_wait_s=0.5).run(idle_exit_s=10.0)
    print("delivered", n, flush=True)
""")


def _child(kafka_bootstrap, topic, group, server) -> subprocess.Popen:
    env = {**os.environ, "SD_TEST_SLACK_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, kafka_bootstrap, topic, group,
                             server.base_url], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)


@pytest.mark.kafka
def test_killed_mid_delivery_and_restarted(server, kafka_bootstrap, topic_factory, produce):
    """The sink process is SIGKILLed while Slack holds the answer to a post it already acted
    on, then killed again at a random moment; the restarted process finishes the job: every
    alert exactly once, because the offset only moves after Slack accepted and the first
    alert after a start is looked up before it is sent."""
    topic, group = topic_factory(1, prefix="alerts"), "slack-sink-test"
    produce(topic, [a.to_dict() for a in ALERTS], key=b"loan-default")
    server.fail("chat.postMessage", ("slow", 60.0))       # acted on, answer held
    p = _child(kafka_bootstrap, topic, group, server)
    deadline = time.monotonic() + 60
    while not any(r.fault.startswith("slow") for r in server.calls("chat.postMessage")):
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    server.faults["chat.postMessage"].clear()
    server.fail("chat.postMessage", ("slow", 3.0), ("slow", 3.0))
    p = _child(kafka_bootstrap, topic, group, server)
    while len(server.calls("chat.postMessage")) < 3:
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    time.sleep(random.Random(3).uniform(0.2, 2.5))
    p.send_signal(signal.SIGKILL)
    p.wait()
    p = _child(kafka_bootstrap, topic, group, server)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert_delivered_once(server, ALERTS)
    assert TOKEN not in out


@pytest.mark.kafka
@pytest.mark.slow
def test_slack_down_for_60_seconds(server, kafka_bootstrap, topic_factory, produce):
    """Slack refuses connections for a full minute in the middle of the stream: the loop
    keeps the alerts on the topic, and delivers each exactly once, in order, afterwards."""
    topic = topic_factory(1, prefix="alerts")
    sink = make_sink(server, retries=3, backoff_cap_s=2.0)
    conf = {"bootstrap.servers": kafka_bootstrap, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500}
    loop = AlertDelivery(conf, topic, "slack-outage", sink, max_wait_s=5.0)
    produce(topic, [a.to_dict() for a in ALERTS[:2]], key=b"loan-default")
    stop = threading.Event()
    t = threading.Thread(target=loop.run, kwargs={"stop": stop}, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while len(server.messages) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.down(60.0)
    down_at = time.monotonic()
    produce(topic, [a.to_dict() for a in ALERTS[2:]], key=b"loan-default")
    while len(server.messages) < len(ALERTS):
        assert time.monotonic() < down_at + 180
        time.sleep(0.2)
    assert time.monotonic() - down_at >= 60
    stop.set()
    t.join(30)
    assert_delivered_once(server, ALERTS)
    assert loop.delivered == len(ALERTS)
