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
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from monitor.faults import fault_point
from monitor.stage2.alerts import Alert
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

    def __repr__(self) -> str:
        return f"AlertDelivery(topic={self.topic!r}, group_id={self.group_id!r}, sink={self.sink!r})"

    def run(self, stop: threading.Event | None = None, idle_exit_s: float | None = None,
            max_alerts: int | None = None) -> int:
        """Deliver until ``stop`` is set, ``idle_exit_s`` pass without a message, or
        ``max_alerts`` were delivered; returns how many were delivered in this call."""
        stop = stop or threading.Event()
        n, idle_since = 0, time.monotonic()
        try:
            while not stop.is_set() and (max_alerts is None or n < max_alerts):
                msg = self._consumer.poll(self.poll_s)
                if msg is None:
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
                    self._commit(msg)
                    continue
                if not self._offer(alert, msg, stop):
                    break
                fault_point("sinks.after_write")
                self._commit(msg)
                n += 1
                self.delivered += 1
                idle_since = time.monotonic()
        finally:
            self.close()
        return n

    def _offer(self, alert: Alert, msg: Any, stop: threading.Event) -> bool:
        paused: list[TopicPartition] = []
        try:
            while True:
                try:
                    self.sink.write([alert])
                    return True
                except SinkUnavailable as e:
                    wait = min(self.max_wait_s, max(0.1, e.retry_in_s))
                    log.warning("%s; alert %s stays on the topic", e, alert.alert_id)
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

    def _commit(self, msg: Any) -> None:
        tp = TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)
        for attempt in range(5):
            try:
                self._consumer.commit(offsets=[tp], asynchronous=False)
                return
            except KafkaException as e:
                log.warning("commit of %s failed (%s), retrying", tp, e)
                time.sleep(0.2 * 2 ** attempt)
        raise SinkUnavailable("alerts-topic", f"could not commit {tp}", 5.0)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None  # type: ignore[assignment]
