"""The alerts-topic delivery loop against the real broker survives what goes wrong inside it
(a commit that fails, a sink that raises) and says so in its health."""

from __future__ import annotations

import threading
import time

import pytest

from monitor.sinks.delivery import AlertDelivery
from tests.test_slack_sink import ALERTS

pytestmark = pytest.mark.kafka


class RecordingSink:
    name = "recording"

    def __init__(self, stall_first_s: float = 0.0) -> None:
        self.written: list[str] = []
        self.stall_first_s = stall_first_s
        self.broken: str | None = None  # raise this (a permanent answer) while set

    def write(self, alerts) -> None:
        if self.broken:
            raise RuntimeError(self.broken)
        if self.stall_first_s and not self.written:
            time.sleep(self.stall_first_s)
        self.written += [a.alert_id for a in alerts]


def _start(loop: AlertDelivery) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    t = threading.Thread(target=loop.run, kwargs={"stop": stop}, daemon=True)
    t.start()
    return t, stop


def _wait(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_failed_commit_does_not_kill_the_loop(kafka_bootstrap, topic_factory, produce):
    """The sink takes longer than max.poll.interval.ms over the first alert: the group drops
    the member and the commit after it fails. The loop records it, rejoins and delivers
    every alert (the first one again: the sink's exactly-once-per-id absorbs that)."""
    topic = topic_factory(1, prefix="alerts")
    produce(topic, [a.to_dict() for a in ALERTS[:4]], key=b"m")
    sink = RecordingSink(stall_first_s=9.0)
    conf = {"bootstrap.servers": kafka_bootstrap, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500, "max.poll.interval.ms": 6000}
    loop = AlertDelivery(conf, topic, "commit-fails", sink, max_wait_s=0.5)
    t, stop = _start(loop)
    try:
        _wait(lambda: set(sink.written) >= {a.alert_id for a in ALERTS[:4]}, 90,
              f"not every alert delivered: {loop.health}")
        assert t.is_alive(), loop.health
        assert loop.health["errors_by_kind"].get("commit", 0) >= 1, loop.health
        produce(topic, [a.to_dict() for a in ALERTS[4:6]], key=b"m")
        _wait(lambda: set(sink.written) >= {a.alert_id for a in ALERTS[:6]}, 60,
              "the loop stopped delivering after the failed commit")
        _wait(lambda: loop.health["ok"], 30, f"health never recovered: {loop.health}")
    finally:
        stop.set()
        t.join(30)


def test_a_sink_that_raises_keeps_the_alert_and_resumes_when_fixed(kafka_bootstrap,
                                                                     topic_factory, produce):
    topic = topic_factory(1, prefix="alerts")
    produce(topic, [a.to_dict() for a in ALERTS[:3]], key=b"m")
    sink = RecordingSink()
    sink.broken = "invalid_auth"
    conf = {"bootstrap.servers": kafka_bootstrap, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500}
    loop = AlertDelivery(conf, topic, "sink-raises", sink, max_wait_s=0.5)
    t, stop = _start(loop)
    try:
        _wait(lambda: loop.health["errors"] >= 3, 60, f"no failures seen: {loop.health}")
        h = loop.health
        assert not h["ok"] and "invalid_auth" in h["last_error"] and t.is_alive()
        assert sink.written == []
        sink.broken = None  # the token was fixed
        _wait(lambda: len(sink.written) == 3, 60, f"not resumed: {loop.health}")
        assert sink.written == [a.alert_id for a in ALERTS[:3]]  # in order, once each
        _wait(lambda: loop.health["ok"], 10, f"health never recovered: {loop.health}")
    finally:
        stop.set()
        t.join(30)
