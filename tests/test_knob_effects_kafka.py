"""Config keys whose effect only a broker shows (tests/test_knobs.py names these tests):
stage 1 against the session's real broker, small topics, a few events."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kernels import ReferenceProfile
from monitor.config import from_dict
from monitor.errors import StreamdriftError
from monitor.pipeline import make_source
from monitor.topics import ensure_topics

pytestmark = pytest.mark.kafka

PROFILE = ReferenceProfile.build(numeric={"x": np.random.default_rng(0).normal(size=2000)},
                                 categorical={})


def _cfg(bootstrap: str, topic: str, **stream):
    name = f"knob-{uuid.uuid4().hex[:6]}"
    return from_dict({"monitor": name, "kafka": {"bootstrap": bootstrap,
                                                "session_timeout_ms": 6000},
                      "stream": {"topic": topic, **stream}, "features": {"numeric": ["x"]},
                      "windows": {"size": "1h"}, "reference": {"profile": "/r"},
                      "triggers": {"enabled": False}}, env={})


def _source(cfg, bootstrap: str):
    client = {"bootstrap.servers": bootstrap}
    ensure_topics(cfg, client)
    for topic in (cfg.topics.state, cfg.topics.partials, cfg.topics.dead_letter):
        _high_watermark(bootstrap, topic)  # wait for the new topics' leaders
    src = make_source(cfg, PROFILE, client)
    src.consumer.subscribe([cfg.stream.topic], on_assign=src._on_assign,
                           on_revoke=src._on_revoke)
    deadline = time.monotonic() + 60
    while not src.parts and time.monotonic() < deadline:
        try:
            src.step(0.2)
        except (KafkaError, KafkaException):  # topics created a moment ago: leaders move
            time.sleep(0.5)
    assert src.parts, "stage 1 never joined its group"
    return src


def _run_until(src, events: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while src.stats.events_in < events and time.monotonic() < deadline:
        src.step(0.2)


def _high_watermark(bootstrap: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "knob-hw"})
    try:
        for _ in range(60):
            try:
                return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
            except (KafkaError, KafkaException):  # created a moment ago: no leader yet
                time.sleep(0.5)
        raise AssertionError(f"{topic} never got a leader")
    finally:
        c.close()


def test_stream_topic_start_from_and_batch_size(kafka_bootstrap, topic_factory, produce):
    """stream.topic is what stage 1 reads (a missing one is named at start); start_from
    decides whether events before the first start count; batch_size caps each consume."""
    topic = topic_factory()
    produce(topic, [{"x": float(i)} for i in range(6)])
    with pytest.raises(StreamdriftError, match=r"^stream.topic: the topic 'no-such-"):
        ensure_topics(_cfg(kafka_bootstrap, "no-such-topic"),
                      {"bootstrap.servers": kafka_bootstrap})
    early = _source(_cfg(kafka_bootstrap, topic, start_from="earliest", batch_size=2),
                    kafka_bootstrap)
    late = _source(_cfg(kafka_bootstrap, topic, start_from="latest", batch_size=10_000),
                   kafka_bootstrap)
    try:
        _run_until(early, 6)
        for _ in range(5):
            late.step(0.2)
        assert (early.stats.events_in, late.stats.events_in) == (6, 0)
        assert early.stats.batches >= 3  # 6 events, at most 2 a batch
        produce(topic, [{"x": float(i)} for i in range(6)])
        _run_until(late, 6)
        assert late.stats.events_in == 6
    finally:
        early.close()
        late.close()


def test_snapshot_interval_is_how_often_stage_1_stores_its_state(kafka_bootstrap,
                                                                 topic_factory, produce):
    """Events that move no window (one-hour windows) leave the state dirty: it is stored
    after snapshot_interval, not before."""
    stored = []
    for interval in ("200ms", "1h"):
        topic = topic_factory()
        cfg = _cfg(kafka_bootstrap, topic, snapshot_interval=interval)
        src = _source(cfg, kafka_bootstrap)
        try:
            produce(topic, [{"x": float(i)} for i in range(4)])
            _run_until(src, 4)  # the first events open a window: stored at once
            before = _high_watermark(kafka_bootstrap, cfg.topics.state)
            produce(topic, [{"x": float(i)} for i in range(4)])
            _run_until(src, 8)
            t_end = time.monotonic() + 1.5
            while time.monotonic() < t_end:
                src.step(0.1)
            stored.append(_high_watermark(kafka_bootstrap, cfg.topics.state) - before)
        finally:
            src.close()
    assert stored[0] >= 1 and stored[1] == 0, stored


def test_replication_factor_is_what_new_topics_are_created_with(kafka_bootstrap,
                                                                topic_factory):
    """One broker: a replication factor of 1 creates the topics, 3 is refused by name."""
    topic = topic_factory()
    client = {"bootstrap.servers": kafka_bootstrap}
    ok = _cfg(kafka_bootstrap, topic)
    ok = from_dict({**_dict(ok), "topics": {"replication_factor": 1}}, env={})
    assert ensure_topics(ok, client)
    too_many = from_dict({**_dict(ok), "monitor": ok.monitor + "-b",
                          "topics": {"replication_factor": 3}}, env={})
    with pytest.raises(StreamdriftError, match="cannot create topic .*[Rr]eplication"):
        ensure_topics(too_many, client)


def _dict(cfg) -> dict:
    return {"monitor": cfg.monitor, "kafka": {"bootstrap": cfg.kafka.bootstrap},
            "stream": {"topic": cfg.stream.topic}, "features": {"numeric": ["x"]},
            "windows": {"size": "1m"}, "reference": {"profile": "/r"},
            "triggers": {"enabled": False}}
