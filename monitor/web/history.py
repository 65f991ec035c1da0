"""A bounded history of the reports and alerts topics, kept fresh by a background reader.

The status page reads what any deployment publishes, whichever process closed the windows:
the last ``max_windows`` reports per monitor and model version, the last ``max_alerts``
notifications, and which alert keys are open now (fired and not resolved). On start it
seeks each partition to at most ``max_windows`` (``max_alerts``) messages before its end, so
a long-lived topic costs a bounded read. It never joins a consumer group's assignment (it
assigns partitions itself) and never commits.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict, deque
from typing import Any

import orjson

log = logging.getLogger(__name__)


class History:
    """Reports and alerts as plain dicts. ``version`` grows whenever something arrives, so
    a page can ask "anything new?" cheaply. Thread-safe: the reader thread adds, the HTTP
    threads read copies."""

    def __init__(self, max_windows: int = 48, max_alerts: int = 200) -> None:
        self.max_windows = max_windows
        self.max_alerts = max_alerts
        self._reports: dict[tuple[str, str], OrderedDict[int, dict[str, Any]]] = {}
        self._alerts: deque[dict[str, Any]] = deque(maxlen=max_alerts)
        self._open: dict[str, dict[str, Any]] = {}  # alert key -> item (+ alert fields)
        self._perf: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.version = 0
        self.bad_messages = 0
        self.error: str | None = None

    def add_report(self, r: dict[str, Any]) -> None:
        from monitor.web.views import is_performance, model_of

        if not isinstance(r, dict) or "window_start_ms" not in r or "checks" not in r:
            self.bad_messages += 1
            return
        if is_performance(r):  # labels: joins its window's report when shown
            with self._lock:
                k = (str(r.get("monitor", "?")), r["window_start_ms"])
                if r.get("revision", 0) >= self._perf.get(k, {}).get("revision", -1):
                    self._perf[k] = r
                    self._perf.move_to_end(k)
                while len(self._perf) > self.max_windows * 4:
                    self._perf.popitem(last=False)
                self.version += 1
            return
        with self._lock:
            group = self._reports.setdefault((str(r.get("monitor", "?")), model_of(r)),
                                             OrderedDict())
            group[r["window_start_ms"]] = r  # a re-published window replaces itself
            while len(group) > self.max_windows:
                group.pop(min(group))
            self.version += 1

    def add_alert(self, a: dict[str, Any]) -> None:
        if not isinstance(a, dict) or "items" not in a or "kind" not in a:
            self.bad_messages += 1
            return
        from monitor.web.views import model_of

        a = {**a, "model_key": model_of(a)}
        with self._lock:
            self._alerts.append(a)
            for item in a["items"]:
                if a["kind"] == "resolved":
                    self._open.pop(item["key"], None)
                else:
                    self._open[item["key"]] = {**item, "monitor": a.get("monitor"),
                                               "model_key": a["model_key"],
                                               "alert_id": a.get("alert_id"),
                                               "window_start_ms": a.get("window_start_ms"),
                                               "kind": a["kind"]}
            self.version += 1

    def groups(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """(monitor, model version) -> reports in window order."""
        from monitor.web.views import with_performance

        with self._lock:
            return {k: [with_performance(v[s], self._perf.get((k[0], s))) for s in sorted(v)]
                    for k, v in sorted(self._reports.items())}

    def alerts(self, monitor: str | None = None, model: str | None = None
               ) -> list[dict[str, Any]]:
        """The notifications kept, of one monitor and ``model:version`` when given."""
        with self._lock:
            return [a for a in self._alerts if _of(a, monitor, model)]

    def open_alerts(self, monitor: str | None = None, model: str | None = None
                    ) -> list[dict[str, Any]]:
        """Open alert items, of one monitor and ``model:version`` when given."""
        with self._lock:
            return sorted((i for i in self._open.values() if _of(i, monitor, model)),
                          key=lambda i: i["key"])


def _of(d: dict[str, Any], monitor: str | None, model: str | None) -> bool:
    return ((monitor is None or d.get("monitor") == monitor)
            and (model is None or d.get("model_key") == model))


class TopicReader:
    """Feeds a :class:`History` from the reports and alerts topics in a daemon thread."""

    def __init__(self, client: dict[str, Any], reports_topic: str, alerts_topic: str,
                 history: History) -> None:
        self.client = client
        self.topics = {reports_topic: history.add_report, alerts_topic: history.add_alert}
        self.history = history
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="streamdrift-status-reader",
                                       daemon=True)

    def start(self) -> "TopicReader":
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)

    def _assign(self, consumer, assigned: set[str]) -> set[str]:
        """Add every partition of the topics that exist now (and were not assigned yet),
        near their ends; returns the topics assigned so far."""
        from confluent_kafka import TopicPartition

        md = consumer.list_topics(timeout=10)
        parts, done = [], set(assigned)
        for topic in self.topics:
            t = md.topics.get(topic)
            if topic in assigned:
                continue
            if t is None or t.error is not None:
                continue
            keep = (self.history.max_windows * 4 if self.topics[topic] ==
                    self.history.add_report else self.history.max_alerts)
            for p in t.partitions:
                lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                parts.append(TopicPartition(topic, p, max(lo, hi - keep)))
            done.add(topic)
        if parts:
            consumer.incremental_assign(parts)
        return done

    def _run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer({**self.client, "group.id": f"streamdrift-status-{uuid.uuid4().hex}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "enable.partition.eof": False})
        try:
            assigned: set[str] = set()
            while not self.stop.is_set():
                if assigned != set(self.topics):  # a topic may be created after we start
                    try:
                        assigned = self._assign(consumer, assigned)
                        self.history.error = None
                    except Exception as e:  # noqa: BLE001 - shown on the page, retried
                        self.history.error = f"cannot read the topics: {e}"
                    if assigned != set(self.topics):
                        self.stop.wait(2.0)
                for m in consumer.consume(200, timeout=0.5):
                    if m.error():
                        continue
                    try:
                        value = orjson.loads(m.value())
                    except orjson.JSONDecodeError:
                        self.history.bad_messages += 1
                        continue
                    self.topics[m.topic()](value)
        finally:
            consumer.close()


def read_to_end(client: dict[str, Any], topic: str, what: str, last: int | None = None,
                timeout_s: float = 60.0):
    """The values on ``topic`` up to its end as of the call (each partition from its low
    watermark, or its last ``last`` messages, to the high one seen at the start), without
    joining a consumer group. ``what`` names the config field for error messages."""
    import time

    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    from monitor.errors import StreamdriftError

    # partition EOF: reports and alerts are written in transactions, so the last offset
    # below the high watermark can be a commit marker that no message ever carries
    c = Consumer({**client, "group.id": f"streamdrift-read-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True,
                  "log_level": 0})  # an unreachable broker is said once, below

    try:
        try:
            md = c.list_topics(timeout=8)  # no topic named: never auto-creates it
        except KafkaException as e:
            raise StreamdriftError(f"kafka.bootstrap: cannot reach Kafka at "
                                   f"{client.get('bootstrap.servers')} ({e.args[0].str()}); "
                                   "check the config's kafka section") from None
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            raise StreamdriftError(f"{what}: no topic {topic!r} on this cluster (has the "
                                   "monitor run yet?)")
        ends: dict[int, int] = {}
        parts = []
        for p in t.partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if hi > lo:
                ends[p] = hi
                parts.append(TopicPartition(topic, p, lo if last is None else max(lo, hi - last)))
        c.assign(parts)
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for m in c.consume(500, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        ends.pop(m.partition(), None)
                    continue
                if m.offset() + 1 >= ends.get(m.partition(), 0):
                    ends.pop(m.partition(), None)
                yield m.value()
        if ends:
            raise StreamdriftError(f"{what}: {topic!r} not read to its end in {timeout_s:.0f} s")
    finally:
        c.close()
