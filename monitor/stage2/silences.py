"""Silences: "do not notify about these alerts until then", shared by every worker.

A silence matches alert keys by shell-style patterns on monitor, family, check and feature, and
expires at ``until_ms`` (epoch ms; None = until removed). As in Alertmanager, a silenced alert
still fires inside the policy; only its notifications are held back, and it is announced when
the silence ends while it is still firing.

Silences from the CLI (or the web) live in a compacted Kafka topic (``topics.silences``), one
record per silence, keyed by its id (``sil-`` + a hash of monitor, family, check and feature:
silencing the same thing again replaces the earlier silence); removing one writes a tombstone.
Every stage-2 worker follows the topic (:class:`SilenceFollower`), so a silence added on one
machine holds on all of them and survives restarts. A record that is not a silence is counted
and skipped, never fatal. Silences in the config file (``alerts.silences``) are added to these.

The small API that the CLI and the web use against a running deployment's Kafka:

>>> s = Silence(reason="known backfill", feature="dti_*", until_ms=2_000)
>>> silence_id(s) == silence_id(Silence(reason="other words", feature="dti_*"))
True
>>> s.covers(monitor="m", family="numeric_drift", check="ks", feature="dti_trend", now_ms=1_000)
True
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from monitor.errors import StreamdriftError
from monitor.records import Silence

log = logging.getLogger("streamdrift.silences")

__all__ = ["Silence", "SilenceFollower", "SilenceStore", "silence_id"]


def silence_id(s: Silence) -> str:
    """The id of what a silence matches (not of its reason or expiry)."""
    what = "\x1f".join((s.monitor, s.family, s.check, s.feature))
    return "sil-" + hashlib.sha256(what.encode()).hexdigest()[:16]


def reader_group(topic: str) -> str:
    """The consumer group id the readers of ``topic`` use: they commit nothing, but a
    secured cluster needs a fixed name to grant READ on."""
    return f"{topic}.reader"


def _decode(key: bytes | None, value: bytes | None) -> tuple[str, Silence | None]:
    """``(id, silence)``; silence None for a tombstone. Raises ValueError when unreadable."""
    if key is None:
        raise ValueError("a silence record needs a key")
    if value is None:
        return key.decode(), None
    d = orjson.loads(value)
    if not isinstance(d, dict) or not isinstance(d.get("reason"), str):
        raise ValueError("not a silence")
    s = Silence.from_dict(d)
    if s.until_ms is not None and not isinstance(s.until_ms, int):
        raise ValueError("until_ms must be an integer")
    return key.decode(), s


def ensure_topic(client: dict[str, Any], topic: str) -> None:
    """Create the compacted silences topic if it is missing."""
    admin = AdminClient(client)
    if topic in admin.list_topics(timeout=15).topics:
        return
    futs = admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})],
                               operation_timeout=30)
    for fut in futs.values():
        try:
            fut.result(30)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise StreamdriftError(f"topics.silences: cannot create {topic}: {e}") from e


def read_all(client: dict[str, Any], topic: str, timeout_s: float = 30.0
             ) -> dict[str, Silence]:
    """Every silence on the topic now, by id (expired ones included)."""
    c = Consumer({**client, "group.id": reader_group(topic),
                  "enable.auto.commit": False, "enable.partition.eof": True})
    out: dict[str, Silence] = {}
    try:
        meta = c.list_topics(topic, timeout=timeout_s).topics[topic]
        if meta.error is not None:
            return out
        parts = sorted(meta.partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        done: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(done) < len(parts) and time.monotonic() < deadline:
            for m in c.consume(500, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        done.add(m.partition())
                    continue
                _fold(out, m.key(), m.value())
        if len(done) < len(parts):
            raise StreamdriftError(f"could not read the silences topic {topic} in {timeout_s}s")
    finally:
        c.close()
    return out


def _fold(into: dict[str, Silence], key: bytes | None, value: bytes | None) -> bool:
    try:
        sid, s = _decode(key, value)
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        log.warning("skipping a record on the silences topic that is not a silence: %s", e)
        return False
    if s is None:
        into.pop(sid, None)
    else:
        into[sid] = s
    return True


class SilenceStore:
    """Add, remove and list silences on ``topic`` of a running deployment's Kafka.

    ``client`` is the librdkafka client config (``monitor.config.kafka_client_config``).
    """

    def __init__(self, client: dict[str, Any], topic: str) -> None:
        self.client, self.topic = client, topic

    def __repr__(self) -> str:
        return f"SilenceStore(topic={self.topic!r})"

    def add(self, silence: Silence) -> str:
        """Store ``silence`` (replacing one that matches the same keys); returns its id."""
        sid = silence_id(silence)
        self._write([(sid, orjson.dumps(silence.to_dict()))])
        return sid

    def remove(self, silence_id: str | None = None, **match: str) -> int:
        """Remove the silence with this id, or every silence whose fields equal ``match``
        (e.g. ``feature="f0", check="ks"``); returns how many went."""
        have = read_all(self.client, self.topic) if self._exists() else {}
        gone = [sid for sid, s in have.items()
                if (silence_id is None or sid == silence_id)
                and all(getattr(s, k) == v for k, v in match.items())]
        self._write([(sid, None) for sid in gone])
        return len(gone)

    def list(self, now_ms: int | None = None) -> dict[str, Silence]:
        """Silences by id; with ``now_ms``, only those still in force then."""
        have = read_all(self.client, self.topic) if self._exists() else {}
        return {sid: s for sid, s in sorted(have.items())
                if now_ms is None or s.until_ms is None or now_ms < s.until_ms}

    def active(self, now_ms: int) -> list[Silence]:
        """The silences in force at ``now_ms``."""
        return list(self.list(now_ms).values())

    def prune(self, now_ms: int) -> int:
        """Tombstone the silences that expired; returns how many."""
        have = read_all(self.client, self.topic) if self._exists() else {}
        gone = [sid for sid, s in have.items() if s.until_ms is not None and s.until_ms <= now_ms]
        self._write([(sid, None) for sid in gone])
        return len(gone)

    def _exists(self) -> bool:
        return self.topic in AdminClient(self.client).list_topics(timeout=15).topics

    def _write(self, records: list[tuple[str, bytes | None]]) -> None:
        if not records:
            return
        ensure_topic(self.client, self.topic)
        failed: list[str] = []

        def report(err, msg) -> None:
            if err is not None:
                failed.append(str(err))

        p = Producer({**self.client, "enable.idempotence": True, "linger.ms": 0})
        for key, value in records:
            p.produce(self.topic, value, key.encode(), on_delivery=report)
        left = p.flush(30)
        if left or failed:
            raise StreamdriftError(f"silences not stored on {self.topic}: "
                                   f"{failed[0] if failed else f'{left} writes timed out'}")


class SilenceFollower:
    """Follows the silences topic in a background thread; :meth:`current` is what holds now.

    ``start()`` returns once the topic has been read to its end (or ``timeout_s`` passed).
    ``errors`` counts records that were not silences.
    """

    def __init__(self, client: dict[str, Any], topic: str, poll_s: float = 0.5) -> None:
        self.client, self.topic, self.poll_s = client, topic, poll_s
        self._silences: dict[str, Silence] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def __repr__(self) -> str:
        return f"SilenceFollower(topic={self.topic!r}, silences={len(self._silences)})"

    def current(self) -> list[Silence]:
        with self._lock:
            return list(self._silences.values())

    def start(self, timeout_s: float = 30.0) -> "SilenceFollower":
        ensure_topic(self.client, self.topic)
        self._thread = threading.Thread(target=self._run, name="silences", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            log.warning("silences topic %s not read to its end in %.0fs", self.topic, timeout_s)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as e:  # a broker outage: keep the silences we have, reconnect
                log.warning("following the silences topic: %s; retrying", e)
                self._stop.wait(2.0)

    def _follow(self) -> None:
        c = Consumer({**self.client, "group.id": reader_group(self.topic),
                      "enable.auto.commit": False, "enable.partition.eof": True})
        try:
            parts = sorted(c.list_topics(self.topic, timeout=15).topics[self.topic].partitions)
            c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts])
            fresh: dict[str, Silence] = {}
            done: set[int] = set()
            while not self._stop.is_set():
                for m in c.consume(500, timeout=self.poll_s):
                    if m.error() is not None:
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            done.add(m.partition())
                        continue
                    if not _fold(fresh, m.key(), m.value()):
                        self.errors += 1
                if len(done) >= len(parts):
                    with self._lock:
                        self._silences = dict(fresh)
                    self._ready.set()
        finally:
            c.close()
