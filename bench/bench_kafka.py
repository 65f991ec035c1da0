"""Kafka ceilings: broker cold start, raw consume rates, and a per-event Faust agent.

Every later throughput figure is compared with these. One local broker (jars cached), one
3-partition topic of synthetic ~640-byte JSON events; each consume run uses a fresh consumer
group reading the topic from the beginning to its end.

    python -m bench.bench_kafka [--events 300000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.report import median, publish
from monitor.dev.kafka import KAFKA_VERSION, DevKafka, ensure_jars
from monitor.dev.synthetic import Scenario, generate, to_json

ROOT = Path(__file__).resolve().parents[1]
FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def fill(bootstrap: str, n: int, partitions: int = 3) -> tuple[str, float]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)
    msgs = to_json(generate(Scenario(n_events=n, seed=7)))
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                  "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000,
                  "enable.idempotence": True})
    for i, m in enumerate(msgs):
        while True:
            try:
                p.produce(topic, m, key=str(i).encode())
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(120) == 0
    return topic, sum(len(m) for m in msgs) / n


def confluent_rate(bootstrap: str, topic: str, n: int) -> float:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"b-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.max.bytes": 52_428_800, **FAST})
    c.subscribe([topic])
    got, t0 = 0, None
    while got < n:
        batch = c.consume(num_messages=10_000, timeout=1.0)
        if batch and t0 is None:
            t0 = time.perf_counter()
        got += sum(1 for m in batch if m.error() is None)
    dt = time.perf_counter() - t0
    c.close()
    return n / dt


async def _aiokafka(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"a-{uuid.uuid4().hex[:8]}",
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=6000, heartbeat_interval_ms=500,
                         max_partition_fetch_bytes=4_194_304)
    await c.start()
    got, t0 = 0, None
    try:
        while got < n:
            batches = await c.getmany(timeout_ms=1000, max_records=10_000)
            if batches and t0 is None:
                t0 = time.perf_counter()
            got += sum(len(v) for v in batches.values())
        return n / (time.perf_counter() - t0)
    finally:
        await c.stop()


def faust_rate(bootstrap: str, topic: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "faust.json"
        subprocess.run([sys.executable, "-m", "bench.faust_count", bootstrap, topic, str(n),
                        str(out)], cwd=ROOT, check=False, timeout=900, capture_output=True)
        got = json.loads(out.read_text())
        assert got["events"] == n and got["duplicates"] == 0, got
        return n / got["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--faust-events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    ensure_jars()
    starts = []
    for _ in range(a.runs):
        with DevKafka() as k:
            starts.append(k.started_in_s)
    print(f"broker cold start (jars cached): {[round(s, 2) for s in starts]} s")
    with DevKafka(heap="1g") as k:
        topic, size = fill(k.bootstrap, a.events)
        ftopic, _ = fill(k.bootstrap, a.faust_events)
        conf = [confluent_rate(k.bootstrap, topic, a.events) for _ in range(a.runs)]
        print(f"confluent-kafka consume: {[round(r) for r in conf]} events/s")
        aio = [asyncio.run(_aiokafka(k.bootstrap, topic, a.events)) for _ in range(a.runs)]
        print(f"aiokafka getmany: {[round(r) for r in aio]} events/s")
        fa = [faust_rate(k.bootstrap, ftopic, a.faust_events) for _ in range(a.runs)]
        print(f"faust per-event agent: {[round(r) for r in fa]} events/s")
    c, ai, f, st = median(conf), median(aio), median(fa), median(starts)
    text = f"""
Apache Kafka {KAFKA_VERSION} (KRaft, one local broker, 3 partitions), {a.events:,} synthetic
JSON events of {size:.0f} bytes on average (lz4), medians of {a.runs} runs, each with a fresh
consumer group from the earliest offset. The Faust agent reads {a.faust_events:,} events one at
a time (`async for event in stream.events()`, JSON-decodes each and counts it).

| figure | median | runs |
|---|---|---|
| broker cold start, jars cached | {st:.2f} s | {', '.join(f'{s:.2f}' for s in starts)} |
| confluent-kafka `consume(10000)` | {c:,.0f} events/s | {', '.join(f'{r:,.0f}' for r in conf)} |
| aiokafka `getmany(max_records=10000)` | {ai:,.0f} events/s | {', '.join(f'{r:,.0f}' for r in aio)} |
| Faust agent, per event | {f:,.0f} events/s | {', '.join(f'{r:,.0f}' for r in fa)} |

Ratios in this run: confluent-kafka / Faust per-event = {c / f:.1f}x; confluent-kafka /
aiokafka = {c / ai:.1f}x.
"""
    print(text)
    publish("kafka", {
        "kafka.broker_cold_start_s": (round(st, 3), "s"),
        "kafka.confluent_consume_events_per_s": (round(c), "events/s"),
        "kafka.aiokafka_consume_events_per_s": (round(ai), "events/s"),
        "faust.per_event_events_per_s": (round(f), "events/s"),
    }, text)


if __name__ == "__main__":
    main()
