"""The foundation holds: a real broker, 100,000 JSON events, read back exactly by both clients."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.conftest import FAST_GROUP

pytestmark = pytest.mark.kafka

N = 100_000
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def filled_topic(kafka_bootstrap, request):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"roundtrip-{int(time.time() * 1000)}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for f in admin.create_topics([NewTopic(name, 3, 1)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20,
                  "enable.idempotence": True, "queue.buffering.max.messages": 200_000})
    for i in range(N):
        p.produce(name, orjson.dumps({"id": i, "x": i * 0.5, "cat": f"c{i % 7}"}), key=str(i))
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    return name


def test_confluent_consumer_reads_every_event_once(kafka_bootstrap, filled_topic):
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"g-{filled_topic}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, **FAST_GROUP})
    c.subscribe([filled_topic])
    ids: list[int] = []
    parts: dict[int, int] = {}
    deadline = time.monotonic() + 120
    while len(ids) < N and time.monotonic() < deadline:
        for m in c.consume(num_messages=10_000, timeout=1.0):
            assert m.error() is None, m.error()
            ids.append(orjson.loads(m.value())["id"])
            parts[m.partition()] = parts.get(m.partition(), 0) + 1
    # nothing more arrives after the last expected event
    extra = c.consume(num_messages=100, timeout=2.0)
    c.close()
    assert len(extra) == 0
    assert len(ids) == N
    assert sorted(ids) == list(range(N))
    assert set(parts) == {0, 1, 2} and sum(parts.values()) == N


def test_high_watermarks_add_up(kafka_bootstrap, filled_topic):
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "hw"})
    total = sum(c.get_watermark_offsets(TopicPartition(filled_topic, p), timeout=10)[1]
                for p in range(3))
    c.close()
    assert total == N


def test_faust_transport_reads_every_event_once(kafka_bootstrap, filled_topic, tmp_path):
    out = tmp_path / "faust.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.faust_count", kafka_bootstrap, filled_topic, str(N), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.exists(), f"faust worker exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    got = json.loads(out.read_text())
    assert got["events"] == N
    assert got["unique_ids"] == N
    assert got["duplicates"] == 0
    assert sorted(got["per_partition"]) == ["0", "1", "2"]
    assert sum(got["per_partition"].values()) == N
