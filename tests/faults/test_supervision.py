"""Supervision and checked writes (findings 3 and 4): a write Kafka refuses is seen through
its delivery report, fails the stage loudly, the stage restarts with backoff, /health names
it with its last error in every ``--stage`` mode, /metrics counts it, and a stage that keeps
failing ends the process non-zero."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from monitor.dev.kafka import free_port
from monitor.supervise import EXIT_GAVE_UP, Health, Supervisor
from tests.e2e_harness import START_MS, write_config
from tests.faults.harness import Monitor, setup


class _Failing:
    runs = 0

    def run(self, stop):
        _Failing.runs += 1
        raise RuntimeError(f"boom {_Failing.runs}")


def test_a_failing_stage_is_restarted_with_backoff_then_the_process_gives_up():
    health, gave_up, stop = Health(), [], threading.Event()
    sup = Supervisor("source", _Failing, health, backoff_s=0.01, max_backoff_s=0.02,
                     max_failures=3, on_give_up=lambda name, e: gave_up.append((name, str(e))))
    sup.run(stop)
    assert _Failing.runs == 4 and gave_up == [("source", "boom 4")]
    st = health.stages["source"]
    assert st.restarts == 3 and st.state == "failed"
    assert health.problems() == {"source": "failed after RuntimeError: boom 4"}


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def _wait_health(port: int, pred, timeout_s: float, mon: Monitor) -> dict:
    deadline = time.monotonic() + timeout_s
    body = {}
    while time.monotonic() < deadline:
        code, raw = _get(f"http://127.0.0.1:{port}/health")
        if code:
            body = json.loads(raw)
            if pred(code, body):
                return body
        assert mon.alive() or pred(0, body), mon.text()[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"health never matched; last {body}\n{mon.text()[-2000:]}")


def _small_topic(bootstrap: str, name: str, max_bytes: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, 1, 1, config={
            "max.message.bytes": str(max_bytes)})]).values():
        f.result(30)




@pytest.mark.kafka
@pytest.mark.slow
def test_a_refused_dead_letter_write_fails_stage_1_loudly(kafka_bootstrap, tmp_path, produce):
    s = setup(tmp_path, kafka_bootstrap)
    _small_topic(kafka_bootstrap, s.cfg.topics.dead_letter, 2000)  # refuses > 2000 B
    port = free_port()
    s.d["http"]["port"] = port
    write_config(tmp_path, s.d)
    good = {"ts": START_MS, "event_id": "a", "income": 1.0}
    noise = b"{" + os.urandom(6000)  # malformed, and zstd cannot shrink it under 2000 B
    produce(s.topic, [good, noise, good], partition=0)
    mon = Monitor(s, tmp_path / "m.log", stage="source")
    try:
        body = _wait_health(port, lambda c, b: c == 503 and "DeliveryFailed" in
                            b.get("problems", {}).get("source", ""), 400, mon)
        assert "MSG_SIZE_TOO_LARGE" in body["problems"]["source"]
        _, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        text = metrics.decode()
        assert 'kind="dead_letter"' in text and "streamdrift_delivery_failures_total" in text
        assert 'streamdrift_stage_restarts_total{monitor="' in text
    finally:
        mon.stop()


@pytest.mark.kafka
@pytest.mark.slow
def test_stage_2_failing_to_publish_reports_shows_in_health_then_exits_non_zero(
        kafka_bootstrap, tmp_path, produce):
    s = setup(tmp_path, kafka_bootstrap, idle_timeout=1000)
    _small_topic(kafka_bootstrap, s.cfg.topics.reports, 120)  # every report is refused
    port = free_port()
    s.d["http"]["port"] = port
    write_config(tmp_path, s.d)
    rows = [{"ts": START_MS + i * 10, "event_id": str(i), "income": 1.0} for i in range(3600)]
    for p in range(4):
        produce(s.topic, rows, partition=p)
    src_cfg = tmp_path / "source.yaml"  # its own HTTP port
    src_cfg.write_text(yaml.safe_dump({**s.d, "http": {"host": "127.0.0.1", "port": 0}}))
    src = Monitor(s, tmp_path / "src.log", stage="source", config=src_cfg)
    agg = Monitor(s, tmp_path / "agg.log", stage="aggregate")
    try:
        body = _wait_health(port, lambda c, b: c == 503 and "StepNotCommitted" in
                            b.get("problems", {}).get("aggregate", ""), 400, agg)
        assert "MSG_SIZE_TOO_LARGE" in body["problems"]["aggregate"]
        assert agg.wait_exit(400) == EXIT_GAVE_UP
        assert "keeps failing" in agg.text()
    finally:
        agg.kill9()
        src.stop()
