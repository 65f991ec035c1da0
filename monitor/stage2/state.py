"""Stage 2's durable state and its atomic commit: one Kafka transaction per step.

**The choice, and why.** A step of stage 2 (:mod:`monitor.stage2.step`) changes its window
bookkeeping, the alert policy's state, the rolling reference and the volume baseline, and
emits window reports and alerts. All of that is written in **one Kafka transaction** by a
transactional producer (``transactional.id`` fixed per monitor, so a restarted or competing
worker fences the old one): the state records go to a compacted topic (``topics.stage2_state``),
the reports to the reports topic, the alerts to the alerts topic. Readers use
``read_committed`` (librdkafka's default; the alert delivery loop sets it), so a step's table
changes, reports and alerts become visible together or not at all. The partials-topic offset
of the message a step absorbed is part of the committed document, so a message Faust delivers
again after a crash is recognised and makes no second step; Faust's own consumer commit only
decides where re-reading starts.

Not Faust tables: a table write is buffered by Faust and flushed by Faust's commit, one
changelog record per key, so a step that touches several keys could be half-written, and the
flush before Faust's offset commit gives up after 0.1 s per buffered record. Not an outbox:
transactions make the re-publishing on restore unnecessary and fence zombie workers. Not
Faust's ``exactly_once`` mode: it has open reports of loss and duplicates (faust-streaming
#323, #517).

On restore (first message after a partition assignment, or after any failed step) the state
is read back from the compacted topic up to its end (``enable.partition.eof``), after
``init_transactions`` has aborted whatever a dead predecessor left open.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
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

from monitor.errors import StreamdriftError
from monitor.stage2.step import Stage2State, StepResult

log = logging.getLogger("streamdrift.stage2.state")

MAX_MESSAGE_BYTES = 20_000_000


class StepNotCommitted(StreamdriftError):
    """The transaction of a step was aborted or its outcome is unknown; nothing was adopted.
    Reload the state and try the step again."""


class TransactionalState:
    """Reads stage 2's state back from ``state_topic`` and commits each step in one
    transaction together with its reports and alerts."""

    def __init__(self, client: dict[str, Any], *, state_topic: str, reports_topic: str,
                 alerts_topic: str, transactional_id: str, timeout_s: float = 30.0) -> None:
        self.client = client
        self.state_topic, self.reports_topic, self.alerts_topic = (
            state_topic, reports_topic, alerts_topic)
        self.transactional_id = transactional_id
        self.timeout_s = timeout_s
        self._producer: Producer | None = None
        self._on_delivery: Any = None

    def __repr__(self) -> str:
        return (f"TransactionalState(state_topic={self.state_topic!r}, "
                f"transactional_id={self.transactional_id!r})")

    # -- the producer --------------------------------------------------------------------

    def producer(self) -> Producer:
        """The transactional producer; ``init_transactions`` fences any older instance."""
        if self._producer is None:
            p = Producer({**self.client, "transactional.id": self.transactional_id,
                          "enable.idempotence": True, "linger.ms": 5,
                          "compression.type": "zstd", "message.max.bytes": MAX_MESSAGE_BYTES,
                          "transaction.timeout.ms": 60_000})
            p.init_transactions(self.timeout_s)
            self._producer = p
        return self._producer

    def reset(self) -> None:
        """Drop the producer (after a fatal error); the next use makes and fences a new one."""
        self._producer = None

    # -- restore -------------------------------------------------------------------------

    def load(self) -> Stage2State:
        """The committed state, read from the compacted topic to its end."""
        self.producer()  # aborts a dead predecessor's open transaction first
        # a fixed group id (it commits nothing; the ACL needs a name to grant READ on)
        c = Consumer({**self.client, "group.id": f"{self.transactional_id}-state-reader",
                      "enable.auto.commit": False,
                      "isolation.level": "read_committed", "enable.partition.eof": True})
        try:
            meta = c.list_topics(self.state_topic, timeout=self.timeout_s).topics[self.state_topic]
            if meta.error is not None:
                raise StreamdriftError(f"topics.stage2_state: {self.state_topic}: {meta.error}")
            parts = sorted(meta.partitions)
            c.assign([TopicPartition(self.state_topic, p, OFFSET_BEGINNING) for p in parts])
            at_end: set[int] = set()
            records: list[tuple[str, bytes | None]] = []
            deadline = time.monotonic() + 10 * self.timeout_s
            while len(at_end) < len(parts):
                if time.monotonic() > deadline:
                    raise StreamdriftError(f"could not read {self.state_topic} to its end")
                for m in c.consume(1000, timeout=0.5):
                    err = m.error()
                    if err is None:
                        records.append((m.key().decode(), m.value()))
                    elif err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                    else:
                        raise KafkaException(err)
            state = Stage2State.from_records(records)
            log.info("stage 2 state restored from %s: %d records, offset %s, %d blobs",
                     self.state_topic, len(records), state.doc.get("offset"), len(state.blobs))
            return state
        finally:
            c.close()

    # -- commit --------------------------------------------------------------------------

    def commit(self, state: Stage2State, r: StepResult) -> None:
        """Write ``r`` in one transaction, then adopt it into ``state``. Raises
        :class:`StepNotCommitted` (state untouched) when the transaction did not commit."""
        p = self.producer()
        refused: list[str] = []  # delivery reports: the reason a write was refused
        self._on_delivery = lambda err, msg: err is not None and refused.append(
            f"{err.name()} on {msg.topic()}")
        try:
            p.begin_transaction()
            for key, value in state.records(r):
                self._produce(p, self.state_topic, key.encode(), value)
            for report in r.reports:
                self._produce(p, self.reports_topic, report.key.encode(),
                              orjson.dumps(report.to_dict()))
            for alert in r.alerts:
                self._produce(p, self.alerts_topic, alert.alert_id.encode(),
                              orjson.dumps(alert.to_dict()))
            self._commit(p)
        except KafkaException as e:
            p.poll(0)  # serve the delivery reports: a refused write says why
            err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            if err is not None and (err.txn_requires_abort()
                                    or err.code() == KafkaError._STATE):
                try:
                    p.abort_transaction(self.timeout_s)
                except KafkaException:
                    self.reset()
            else:  # fatal (fenced) or unknown: start over with a new producer
                self.reset()
            why = f"; refused: {refused[0]}" if refused else ""
            raise StepNotCommitted(f"stage 2 step at offset {r.offset} not committed: {e}{why}"
                                   ) from e
        except BufferError as e:
            self.abort_quietly()
            raise StepNotCommitted(f"stage 2 step at offset {r.offset}: {e}") from e
        state.apply(r)

    def _commit(self, p: Producer) -> None:
        for attempt in range(5):
            try:
                p.commit_transaction(self.timeout_s)
                return
            except KafkaException as e:
                err = e.args[0] if e.args else None
                if isinstance(err, KafkaError) and err.retriable() and attempt < 4:
                    log.warning("transaction commit: %s; retrying", err)
                    time.sleep(0.2 * 2 ** attempt)
                    continue
                raise

    def _produce(self, p: Producer, topic: str, key: bytes, value: bytes | None) -> None:
        while True:
            try:
                p.produce(topic, value, key, on_delivery=self._on_delivery)
                return
            except BufferError:
                p.poll(0.05)

    def abort_quietly(self) -> None:
        try:
            if self._producer is not None:
                self._producer.abort_transaction(self.timeout_s)
        except KafkaException:
            self.reset()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None


class ReportFile:
    """Reports also appended to a JSON-lines file, after their step committed. A window
    already in the file (a step re-committed after a crash cannot be, but a restart replays
    nothing twice either way) is not written again."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.written: set[str] = set()
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    d = orjson.loads(line)
                    perf = (f":performance:{d['window_start_ms']}:{d.get('revision')}"
                            if d.get("kind") == "performance" else "")
                    self.written.add(f"{d['monitor']}:{d['window_start_ms']}" if not perf
                                     else f"{d['monitor']}{perf}")
                except (ValueError, KeyError, TypeError):
                    continue

    def write(self, reports: list[Any]) -> None:
        new = [r for r in reports if r.key not in self.written]
        if not new:
            return
        with self.path.open("ab") as f:
            for r in new:
                f.write(orjson.dumps(r.to_dict()) + b"\n")
        self.written.update(r.key for r in new)
