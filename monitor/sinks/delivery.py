"""The alerts-topic consumer that drives a sink: offsets move only after the sink accepted.

One alert at a time, in topic order (the topic is keyed by monitor, so every key of a monitor
stays in order): decode, ``sink.write([alert])``, then a synchronous commit of the next
offset. If the sink raises :class:`~monitor.sinks.SinkUnavailable`, nothing is committed;
the partitions are paused (``poll`` keeps the group membership alive) and the same alert is
offered again after the delay the sink asked for, capped. A crash at any point leaves the
alert uncommitted, so the next process offers it again, and the sink's exactly-once-per-id
(Slack: lookup by id; triggers: idempotency key) absorbs the repeat.

A message that is not an alert (bad JSON, wrong fields) is logged and skipped: it can never
become deliverable, and it must not block the alerts behind it.

The loop survives whatever goes wrong inside it: a sink that raises anything else (a
permanent answer such as ``invalid_auth``, a bug) is treated like an unavailable sink — the
alert stays on the topic and is offered again with backoff, so delivery resumes once the
cause is fixed; a commit that fails (broker outage, the group rebalanced) is retried before
the next alert. :attr:`AlertDelivery.health` says what is happening (``ok``, ``last_error``,
counters, whether the loop is running), for ``/health`` and the process's supervisor.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from monitor.faults import fault_point
from monitor.records import Alert
from monitor.sinks import AlertSink, SinkUnavailable

log = logging.getLogger("streamdrift.sinks.delivery")

#: settings the loop depends on; the caller's config cannot turn them off
REQUIRED = {"enable.auto.commit": False, "enable.auto.offset.store": False,
            "isolation.level": "read_committed"}
DEFAULTS = {"auto.offset.reset": "earliest", "max.poll.interval.ms": 600_000}


class AlertDelivery:
    """Consumes ``topic`` in consumer group ``group_id`` and hands each alert to ``sink``.

    ``consumer_config`` holds the librdkafka settings (bootstrap, security, timeouts);
    ``max_wait_s`` caps the wait between attempts while the sink is unavailable.
    """

    def __init__(self, consumer_config: dict[str, Any], topic: str, group_id: str,
                 sink: AlertSink, *, max_wait_s: float = 30.0, poll_s: float = 0.5) -> None:
        self.topic = topic
        self.group_id = group_id
        self.sink = sink
        self.max_wait_s = max_wait_s
        self.poll_s = poll_s
        conf = {**DEFAULTS, **consumer_config, **REQUIRED, "group.id": group_id}
        self._consumer = Consumer(conf)
        self._consumer.subscribe([topic])
        self.delivered = 0
        self.skipped = 0
        self.errors = 0              # failed sink writes and commits, all kinds
        self.errors_by_kind: dict[str, int] = {}
        self.last_error: str | None = None
        self.failing = False         # the alert in hand (or its commit) keeps failing
        self.failing_kind: str | None = None  # sink kinds, or commit / consume / crashed
        self.running = False
        self._uncommitted: TopicPartition | None = None

    def __repr__(self) -> str:
        return f"AlertDelivery(topic={self.topic!r}, group_id={self.group_id!r}, sink={self.sink!r})"

    @property
    def health(self) -> dict[str, Any]:
        return {"ok": self.running and not self.failing, "running": self.running,
                "last_error": self.last_error, "failing_kind": self.failing_kind,
                "errors": self.errors,
                "errors_by_kind": dict(self.errors_by_kind), "delivered": self.delivered,
                "skipped": self.skipped}

    def run(self, stop: threading.Event | None = None, idle_exit_s: float | None = None,
            max_alerts: int | None = None) -> int:
        """Deliver until ``stop`` is set, ``idle_exit_s`` pass without a message, or
        ``max_alerts`` were delivered; returns how many were delivered in this call."""
        stop = stop or threading.Event()
        n, idle_since = 0, time.monotonic()
        self.running = True
        try:
            while not stop.is_set() and (max_alerts is None or n < max_alerts):
                try:
                    msg = self._consumer.poll(self.poll_s)
                except KafkaException as e:
                    self._failed("consume", e)
                    stop.wait(1.0)
                    continue
                if msg is None:
                    if self._uncommitted is not None:  # a commit failed earlier: again
                        self._commit_pending()
                    if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                        break
                    continue
                if msg.error():
                    log.warning("alerts topic: %s", msg.error())
                    continue
                idle_since = time.monotonic()
                try:
                    alert = Alert.from_dict(orjson.loads(msg.value()))
                except (ValueError, TypeError, KeyError) as e:
                    log.error("skipping message at %s[%d]@%d: not an alert (%s)", msg.topic(),
                              msg.partition(), msg.offset(), e)
                    self.skipped += 1
                    self._uncommitted = self._next(msg)
                    self._commit_pending()
                    continue
                if not self._offer(alert, msg, stop):
                    break
                fault_point("sinks.after_write")
                self._uncommitted = self._next(msg)
                self._commit_pending()
                n += 1
                self.delivered += 1
                idle_since = time.monotonic()
        except Exception as e:  # a bug: say so in health, then let the supervisor see it
            self._failed("crashed", e)
            raise
        finally:
            self.running = False
            self.close()
        return n

    def _offer(self, alert: Alert, msg: Any, stop: threading.Event) -> bool:
        paused: list[TopicPartition] = []
        backoff = 0.5
        try:
            while True:
                try:
                    self.sink.write([alert])
                    self.failing = False
                    return True
                except SinkUnavailable as e:
                    wait = min(self.max_wait_s, max(0.1, e.retry_in_s))
                    self._failed("sink_unavailable", e)
                    log.warning("%s; alert %s stays on the topic", e, alert.alert_id)
                except Exception as e:  # permanent answer or a bug: keep the alert, retry
                    wait = min(self.max_wait_s, backoff)
                    backoff *= 2
                    self._failed(type(e).__name__, e)
                    log.error("sink %s failed on alert %s (%s); it stays on the topic",
                              getattr(self.sink, "name", self.sink), alert.alert_id, e)
                if not paused:
                    paused = self._consumer.assignment()
                    self._consumer.pause(paused)
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    if stop.is_set():
                        return False
                    self._consumer.poll(min(0.2, max(0.0, deadline - time.monotonic())))
        finally:
            if paused:
                self._consumer.resume(paused)

    @staticmethod
    def _next(msg: Any) -> TopicPartition:
        return TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)

    def _commit_pending(self) -> bool:
        """Commit the offset after the last handled alert. A failure (broker outage, the
        group rebalanced) is recorded and retried when the topic is next idle, or superseded
        by the next alert's commit; the loop goes on. After a rebalance an alert may be
        offered again: the sink's exactly-once-per-id absorbs the repeat."""
        tp = self._uncommitted
        assert tp is not None
        try:
            self._consumer.commit(offsets=[tp], asynchronous=False)
        except KafkaException as e:
            self._failed("commit", e)
            log.warning("commit of %s failed (%s); retrying later", tp, e)
            return False
        self._uncommitted = None
        self.failing = False
        return True

    def _failed(self, kind: str, e: BaseException) -> None:
        self.failing, self.failing_kind = True, kind
        self.errors += 1
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1
        self.last_error = f"{kind}: {e}"

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None  # type: ignore[assignment]
