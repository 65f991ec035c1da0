"""Shared fixtures: one real Kafka broker per test session, unique topics, a producer.

``STREAMDRIFT_KAFKA_BOOTSTRAP`` in the environment points the tests at an existing cluster
instead of starting the local broker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import orjson
import pytest

# Consumer-group settings that make joins take seconds, not the 45 s librdkafka default.
FAST_GROUP = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "topic.metadata.refresh.interval.ms": 2000,
}


def _say(request, text: str) -> None:
    """Print past pytest's capture, so the run's log shows the broker's life."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(text, flush=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(request) -> Iterator[str]:
    existing = os.environ.get("STREAMDRIFT_KAFKA_BOOTSTRAP")
    if existing:
        _say(request, f"\n[kafka] using the existing cluster at {existing}")
        yield existing
        return
    from monitor.dev.kafka import KAFKA_VERSION, DevKafka

    broker = DevKafka()
    broker.start()
    _say(request, f"\n[kafka] Apache Kafka {KAFKA_VERSION} broker started at {broker.bootstrap}"
                  f" in {broker.started_in_s:.1f}s (pid {broker.proc.pid})")
    try:
        yield broker.bootstrap
    finally:
        pid = broker.proc.pid if broker.proc else None
        broker.stop()
        _say(request, f"\n[kafka] broker (pid {pid}) stopped")


@pytest.fixture(scope="session")
def secure_kafka(request):
    """A second broker, started only by the tests that ask for it: SASL_SSL + SCRAM-SHA-512
    + ACLs (monitor.dev.secure_kafka), with a ``monitor`` user that has no ACL yet."""
    import secrets

    from monitor.dev.secure_kafka import SecureKafka

    broker = SecureKafka(users={"monitor": secrets.token_urlsafe(16)})
    broker.start()
    _say(request, f"\n[kafka] SASL_SSL broker started at {broker.bootstrap} in "
                  f"{broker.started_in_s:.1f}s (pid {broker.proc.pid})")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture()
def topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    """``topic_factory(partitions=1, prefix="t") -> name``: a new, created, unique topic."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def make(partitions: int = 1, prefix: str = "t", config: dict | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        futures = admin.create_topics(
            [NewTopic(name, partitions, 1, config=config or {})], operation_timeout=30)
        for f in futures.values():
            f.result(30)
        return name

    return make


@pytest.fixture()
def produce(kafka_bootstrap: str) -> Callable[..., int]:
    """``produce(topic, values, key=None, partition=None) -> count``, flushed before return.

    A value may be bytes, str or a dict (encoded as JSON).
    """
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5,
                         "enable.idempotence": True, "queue.buffering.max.messages": 1_000_000})

    def send(topic: str, values, key=None, partition: int | None = None) -> int:
        n = 0
        for v in values:
            if isinstance(v, dict):
                v = orjson.dumps(v)
            kw = {} if partition is None else {"partition": partition}
            while True:
                try:
                    producer.produce(topic, v, key=key, **kw)
                    break
                except BufferError:
                    producer.poll(0.05)
            n += 1
        remaining = producer.flush(60)
        assert remaining == 0, f"{remaining} messages not delivered"
        return n

    return send
