"""A Kafka producer whose every write is checked through its delivery report.

confluent-kafka tells of a failed write only through the delivery callback (``on_delivery``);
``flush()`` returning 0 says the queue is empty, not that every message was written. Here
each message carries a callback, :meth:`CheckedProducer.wait_acked` waits until every report
is in and raises :class:`DeliveryFailed` if any write failed, naming the topic and the error.
Callers mark nothing done (an outbox cleared, an offset committed) before it returns.

Retrying: the producer is idempotent with no message timeout (``message.timeout.ms=0``), so
librdkafka itself retries a write through broker outages, in order and without duplicates,
until the broker acknowledges it — a broker restart only delays. A write that *fails* (an
error the broker will keep giving: authorization, a record too large, a fatal producer state)
is not re-sent message by message, which could reorder a partition's partials and progress:
the stage fails, and its supervisor restarts it with backoff from its last acknowledged
state, which re-sends everything after it in order (:mod:`monitor.supervise`). A stage that
keeps failing ends the process.

While writes wait for acknowledgement, :attr:`DeliveryStats.waiting_since` says since when,
so ``/health`` can tell that a stage is stuck on Kafka rather than idle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Producer

from monitor.errors import StreamdriftError


class DeliveryFailed(StreamdriftError):
    """Kafka refused a write (the message names topic and error); the stage must restart."""


@dataclass
class DeliveryStats:
    """Counters for /metrics, shared by every producer of a process."""

    failures: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, error) -> n
    acked: dict[str, int] = field(default_factory=dict)  # kind -> n
    waiting_since: dict[str, float] = field(default_factory=dict)  # producer -> monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def failed(self, kind: str, error: str) -> None:
        with self._lock:
            self.failures[(kind, error)] = self.failures.get((kind, error), 0) + 1

    def longest_wait_s(self) -> float:
        now = time.monotonic()
        return max((now - t for t in list(self.waiting_since.values())), default=0.0)


DELIVERY_STATS = DeliveryStats()


class CheckedProducer:
    """``produce(topic, value, key, kind=...)`` then ``wait_acked()``; see the module doc.

    ``kind`` labels the write in metrics and errors: state, partial, dead_letter, report ...
    """

    def __init__(self, client_config: dict[str, Any], name: str,
                 stats: DeliveryStats = DELIVERY_STATS, **overrides: Any) -> None:
        self.name = name
        self.stats = stats
        self.producer = Producer({**client_config, "enable.idempotence": True,
                                  "message.timeout.ms": 0,
                                  "reconnect.backoff.max.ms": 1000, **overrides})
        self._errors: list[tuple[str, str, str]] = []  # (kind, topic, error)
        self._outstanding = 0

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                headers: list | None = None, kind: str = "write") -> None:
        cb = self._callback(kind, topic)
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers, on_delivery=cb)
                self._outstanding += 1
                return
            except BufferError:  # local queue full: serve reports, then try again
                self.producer.poll(0.05)

    def _callback(self, kind: str, topic: str) -> Callable[[KafkaError | None, Any], None]:
        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            self._outstanding -= 1
            if err is None:
                self.stats.acked[kind] = self.stats.acked.get(kind, 0) + 1
            else:
                self.stats.failed(kind, err.name())
                self._errors.append((kind, topic, f"{err.name()}: {err.str()}"))
        return on_delivery

    def flush_quietly(self, timeout_s: float) -> None:
        """Push what is queued onto the wire (the fault hook's ``before``), no checks."""
        self.producer.flush(timeout_s)

    def wait_acked(self, stop: threading.Event | None = None, give_up_s: float = 10.0) -> None:
        """Block until Kafka acknowledged every write so far; raise :class:`DeliveryFailed`
        if any failed. With ``stop`` set (shutting down) it gives up after ``give_up_s``
        and raises too: nothing unacknowledged may be marked done."""
        if self._outstanding or len(self.producer):
            self.stats.waiting_since.setdefault(self.name, time.monotonic())
            stopping_at = None
            try:
                while self.producer.flush(1.0) or self._outstanding > 0:
                    if stop is not None and stop.is_set():
                        stopping_at = stopping_at or time.monotonic()
                        if time.monotonic() - stopping_at > give_up_s:
                            raise DeliveryFailed(f"{self.name}: shutting down with "
                                                 f"{self._outstanding} writes unacknowledged")
            finally:
                self.stats.waiting_since.pop(self.name, None)
        if self._errors:
            errs, self._errors = self._errors, []
            kind, topic, first = errs[0]
            raise DeliveryFailed(f"{self.name}: {len(errs)} write(s) refused by Kafka, first: "
                                 f"{kind} to {topic!r}: {first}")

    def __len__(self) -> int:
        return len(self.producer)
