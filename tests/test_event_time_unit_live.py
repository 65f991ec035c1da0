"""Live: event times of the wrong magnitude for ``stream.event_time.unit`` stop stage 1 at the
first batch, before anything is windowed into 1970: ``/health`` names the field and the fix,
the supervisor ends the process non-zero with that line, and no partial was published."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition

from monitor.dev.kafka import free_port
from monitor.supervise import EXIT_GAVE_UP
from tests.e2e_harness import START_MS, write_config
from tests.faults.harness import Monitor, setup

WANT = "stream.event_time.unit: values look like seconds since the epoch; set it to s"


def _health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return 0, {}


def _messages(bootstrap: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "count"})
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in md.partitions)
    finally:
        c.close()


@pytest.mark.kafka
@pytest.mark.slow
def test_seconds_read_as_milliseconds_stop_stage_1_with_the_fix(kafka_bootstrap, tmp_path,
                                                                  produce):
    s = setup(tmp_path, kafka_bootstrap)
    port = free_port()
    s.d["http"]["port"] = port
    write_config(tmp_path, s.d)
    rows = [{"ts": START_MS // 1000 + i // 100, "event_id": str(i), "income": 1.0}
            for i in range(2000)]
    produce(s.topic, rows, partition=0)
    mon = Monitor(s, tmp_path / "m.log", stage="source")
    try:
        deadline, body = time.monotonic() + 300, {}
        while time.monotonic() < deadline:
            code, body = _health(port)
            if code == 503 and WANT in body.get("problems", {}).get("source", ""):
                break
            assert mon.alive(), mon.text()[-3000:]
            time.sleep(0.3)
        else:
            raise AssertionError(f"/health never named the unit: {body}\n{mon.text()[-2000:]}")
        assert _messages(kafka_bootstrap, s.cfg.topics.partials) == 0  # nothing windowed
        assert mon.wait_exit(300) == EXIT_GAVE_UP
        assert WANT in mon.text().splitlines()[-1]
    finally:
        mon.stop()
