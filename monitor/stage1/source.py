"""Stage 1: consume the monitored topic in batches, decode, sketch, publish window partials.

A confluent-kafka consumer in a consumer group reads batches; each batch is decoded into
columns once, split by partition, and absorbed by that partition's :class:`PartitionWindows`.
Bad messages go to the dead-letter topic with the reason in their headers.

Exactly once: each partition's whole state (open sketches, counters, watermark and the next
offset it absorbed) is stored in a compacted state topic. On assignment the owner loads it
and seeks to that offset; events below it are skipped, so a restart never counts an event
twice or loses one. The group's committed offset only feeds the lag metric.

One step is atomic through an **outbox kept in the state**, not Kafka transactions. A step
that closes windows (or moves a partition's progress) puts the messages it must publish into
the partition's state, writes the state and waits for Kafka's acknowledgement, then sends
the messages and waits again, then empties the outbox (the next state write stores it
empty). A crash before the state is acknowledged leaves the old state: the events are read
again and close the same windows with the same content. A crash after it leaves the new
state with its outbox, and the owner that restores it re-publishes the outbox before
anything else. Partials are full snapshots keyed by (window, partition) and progress only
moves forward, so a message published twice changes nothing in stage 2.

Why not transactions: stage 2's Faust consumer reads ``read_committed`` only in Faust's
``exactly_once`` mode (faust-streaming 0.15, ``transport/drivers/aiokafka.py``:
``isolation_level = "read_committed"`` only ``if self.consumer.in_transaction``), which has
open reports of loss and duplicates (faust-streaming #323, #517) and which we do not run.
A transactional stage 1 read ``read_uncommitted`` would let stage 2 see aborted partials.
The outbox needs no reader setting, and a re-published partial is harmless by construction.

Every write is checked through its delivery report (:mod:`monitor.checked_producer`):
dead-letter writes are acknowledged before the state that moves past their messages, the
state before the partials that depend on it, and the outbox is emptied only after the
partials are acknowledged. :mod:`monitor.faults` points mark each of these boundaries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from monitor.checked_producer import CheckedProducer
from monitor.faults import fault_point
from monitor.stage1.columns import any_error, message_columns
from monitor.stage1.event_time import reject_future
from monitor.stage1.partials import PartialMessage
from monitor.stage1.source_stats import SourceStats  # noqa: F401 (its home until now)
from monitor.stage1.state_topic import high_watermark, load_states
from monitor.stage1.versions import VersionGate, partial_messages
from monitor.stage1.windows import NO_TIME, Partial, PartitionWindows

log = logging.getLogger("streamdrift.source")


class SourceStage:
    def __init__(self, *, client_config: dict[str, Any], group_id: str, topic: str, monitor: str,
                 decode: Callable[[list, np.ndarray, np.ndarray], Any],
                 new_sketch: Callable[[], Any], load_sketch: Callable[[bytes], Any],
                 profile_id: str, size_ms: int, slide_ms: int | None, lateness_ms: int,
                 idle_timeout_ms: int, partials_topic: str, state_topic: str,
                 dead_letter_topic: str, batch_size: int = 10_000,
                 snapshot_interval_s: float = 5.0, session_timeout_ms: int = 10_000,
                 start_from: str = "earliest", new_dedup: Callable[[], Any] | None = None,
                 dead_letter_copy: Callable[..., tuple] | None = None,
                 max_future_skew_ms: int = 86_400_000, labels: Any = None,
                 versions: VersionGate | None = None) -> None:
        self.client_config = client_config
        self.topic = topic
        self.monitor = monitor
        self.decode = decode
        self.new_sketch = new_sketch
        self.load_sketch = load_sketch
        self.new_dedup = new_dedup
        self.profile_id = profile_id
        self.size_ms, self.slide_ms, self.lateness_ms = size_ms, slide_ms, lateness_ms
        self.idle_timeout_ms = idle_timeout_ms
        self.partials_topic, self.state_topic = partials_topic, state_topic
        self.dead_letter_topic = dead_letter_topic
        self.dead_letter_copy = dead_letter_copy or (lambda v, k, h: (v, k, h))  # data protection
        self.batch_size = batch_size
        self.snapshot_interval_s = snapshot_interval_s
        self.start_from = start_from
        self.max_future_skew_ms = max_future_skew_ms
        self.labels = labels  # a label_source.LabelSide: the label topic beside this one
        self.versions = versions  # model.version_field: stage1/versions.py
        self.stats = SourceStats()
        self._stop: threading.Event | None = None
        self._dead_letters_pending = False
        self._broken = False
        self.assigned = False  # joined the group and got an assignment (maybe empty)
        self.parts: dict[int, PartitionWindows] = {}
        self._dirty: set[int] = set()
        self._last_data: dict[int, float] = {}
        self._idle_since_wm: dict[int, tuple[float, int]] = {}
        self._progress_sent: dict[int, int] = {}
        self._last_snapshot = time.monotonic()
        self.n_partitions = 0
        self.consumer = Consumer({
            **client_config, "group.id": group_id, "enable.auto.commit": False,
            "auto.offset.reset": start_from, "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(100, session_timeout_ms // 10),
            "enable.partition.eof": False, "fetch.max.bytes": 52_428_800,
            "reconnect.backoff.max.ms": 1000,  # back within a second of a broker restart
            # labels: partition p of both topics to one member (label_source docstring)
            **({"partition.assignment.strategy": "range"} if labels is not None else {}),
        })
        self.out = CheckedProducer(client_config, "stage1", **{
            "linger.ms": 5, "compression.type": "zstd", "message.max.bytes": 20_000_000})

    # -- assignment ----------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        label_tps = [tp for tp in tps if tp.topic != self.topic]
        tps = [tp for tp in tps if tp.topic == self.topic]
        mine = {tp.partition for tp in tps}
        stored = load_states(self.client_config, f"{self.monitor}-state-reader",
                             self.state_topic, mine)
        # not the consumer's own list_topics inside its callback: aborts (test_client_callbacks)
        self.n_partitions = len(self.out.producer.list_topics(self.topic, 10).topics[self.topic].partitions)
        for tp in tps:
            p = tp.partition
            dedup = self.new_dedup() if self.new_dedup else None
            if p in stored:
                self.parts[p] = PartitionWindows.from_bytes(stored[p], self.new_sketch,
                                                            self.load_sketch, dedup)
                tp.offset = self.parts[p].next_offset
            else:
                self.parts[p] = PartitionWindows(p, self.size_ms, self.slide_ms,
                                                 self.lateness_ms, self.new_sketch, dedup)
            self._last_data[p] = time.monotonic()
            self._progress_sent.setdefault(p, self._window_index(self.parts[p].watermark_ms))
        self._republish_outboxes(sorted(mine & set(stored)))
        if self.labels is not None:
            self.labels.on_assign(self, tps, label_tps)
        self.assigned = True
        log.info("assigned partitions %s (restored state for %s)", sorted(mine), sorted(stored))
        consumer.assign(tps + label_tps)

    def _republish_outboxes(self, parts: list[int]) -> None:
        """What a restored state still had to publish goes out first, in its order."""
        sent = 0
        for p in parts:
            for value in self.parts[p].outbox:
                msg = PartialMessage.from_bytes(value)
                self.out.produce(self.partials_topic, value, msg.key, kind="partial")
                sent += 1
        if sent:
            self.out.wait_acked(self._stop)
            for p in parts:
                self.parts[p].outbox = []
                self._dirty.add(p)
            log.info("re-published %d outbox messages of partitions %s", sent, parts)

    def _on_revoke(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        gone = {tp.partition for tp in tps}
        if not self._broken:
            self._snapshot(gone & set(self.parts), force=True)
        if self.labels is not None:
            self.labels.on_revoke(self, gone, write=not self._broken)
        for p in gone:
            self.parts.pop(p, None)
            self._last_data.pop(p, None)
            self._idle_since_wm.pop(p, None)
        log.info("revoked partitions %s", sorted(gone))

    def _on_lost(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        for tp in tps:  # someone else owns them now: drop, don't write
            self.parts.pop(tp.partition, None)
            self._dirty.discard(tp.partition)
        if self.labels is not None:
            self.labels.on_revoke(self, {tp.partition for tp in tps}, write=False)

    # -- the loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        topics = [self.topic] + ([self.labels.topic] if self.labels is not None else [])
        self.consumer.subscribe(topics, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)
        try:
            while not stop.is_set():
                self.step()
        except BaseException:
            # the windows in memory may be half-updated: never store them; the restarted
            # stage resumes from the last acknowledged state
            self._broken = True
            self.consumer.close()
            raise
        self.close()

    def step(self, timeout_s: float = 0.5) -> None:
        msgs = self.consumer.consume(self.batch_size, timeout=timeout_s)
        now = time.monotonic()
        if msgs:
            self._absorb_messages(msgs, now)
        self._heartbeat(now)
        if self.labels is not None:
            self.labels.maybe_emit(self, now)
        if now - self._last_snapshot >= self.snapshot_interval_s:
            self._snapshot(set(self._dirty))
            self._commit_lag_offsets()

    def _absorb_messages(self, msgs: list, now: float) -> None:
        if any_error(msgs):
            for m in msgs:
                if m.error() is not None:
                    log.warning("consumer error: %s", m.error())
            msgs = [m for m in msgs if m.error() is None]
        if self.labels is not None:
            lab = [m for m in msgs if m.topic() != self.topic]
            if lab:
                self.labels.absorb_labels(self, lab)
                msgs = [m for m in msgs if m.topic() == self.topic]
        if not msgs:
            return
        values, part, offsets, ts = message_columns(msgs)
        dec = reject_future(self.decode(values, offsets, ts), ts, self.max_future_skew_ms)
        bad_idx = np.array([b.index for b in dec.bad], np.int64)
        good_mask = np.ones(len(msgs), bool)
        good_mask[bad_idx] = False
        vers = None
        if self.versions is not None:  # model.version_field: stage1/versions.py
            dec, good_mask, vers = self.versions.read(dec, values, offsets, good_mask)
        good_part = part[good_mask]
        if dec.bad:
            self._dead_letter(msgs, dec.bad)
        self.stats.batches += 1
        self.stats.decode_fallback_messages += getattr(dec, "fallback_messages", 0)
        self.stats.events_in += int(good_mask.sum())
        to_publish: list[tuple[int, list[Partial]]] = []
        for p in np.unique(part).tolist():
            pw = self.parts.get(p)
            if pw is None:  # revoked while the batch was in flight
                continue
            sel = np.flatnonzero(good_part == p)
            bad = [(b.offset, b.reason) for b in dec.bad if part[b.index] == p]
            if vers is not None and (over := vers.admit(pw, sel)):
                self._dead_letter(msgs, over)
                self.stats.events_in -= len(over)
                bad, sel = sorted(bad + [(b.offset, b.reason) for b in over]), vers.admitted(sel)
            sub = dec.batch.take(sel)
            samples = [(o, names) for i, o, names in dec.samples if part[i] == p]
            closed = pw.absorb(sub.offset, sub.event_time_ms, bad,
                               sub if vers is None else vers.batch(sub, sel), samples)
            if self.labels is not None:
                self.labels.absorb_predictions(p, sub, int(offsets[part == p].max()) + 1)
            self._dirty.add(p)
            self._last_data[p] = now
            self._idle_since_wm.pop(p, None)
            to_publish.append((p, closed))
        self._publish(to_publish)

    def _dead_letter(self, msgs: list, bad: list) -> None:
        for b in bad:  # the bad path: one message out per bad message in
            m = msgs[b.index]
            self.stats.bad_events[b.reason] = self.stats.bad_events.get(b.reason, 0) + 1
            headers = [("streamdrift.reason", b.reason.encode()),
                       ("streamdrift.error", str(b.error)[:500].encode()),
                       ("streamdrift.source", f"{m.topic()}:{m.partition()}:{m.offset()}".encode())]
            value, key, headers = self.dead_letter_copy(m.value(), m.key(), headers)
            self.out.produce(self.dead_letter_topic, value, key, headers, kind="dead_letter")
        self._dead_letters_pending = True

    def _heartbeat(self, now: float) -> None:
        """An idle partition must not hold windows open: after ``idle_timeout`` without data
        its watermark follows the most advanced partition this worker owns, or, if all are
        idle, moves with the wall clock from where it stood."""
        idle = [p for p, t in self._last_data.items()
                if (now - t) * 1000 >= self.idle_timeout_ms and p in self.parts
                and self._caught_up(p)]
        if not idle:
            return
        busiest = max((pw.watermark_ms for p, pw in self.parts.items() if p not in idle),
                      default=NO_TIME)
        out = []
        for p in idle:
            pw = self.parts[p]
            since, wm0 = self._idle_since_wm.setdefault(p, (now, pw.watermark_ms))
            if wm0 == NO_TIME and busiest == NO_TIME:
                continue  # never saw an event anywhere: nothing to advance from
            target = busiest if busiest != NO_TIME else wm0 + int((now - since) * 1000)
            if target > pw.watermark_ms:
                out.append((p, pw.advance(target)))
        if out:
            self._publish(out)

    def _caught_up(self, p: int) -> bool:
        """Idle means no new data *and* nothing left to read: a partition that is merely
        behind (its data not fetched yet) must not have its windows closed early."""
        hi = high_watermark(self.consumer, self.topic, p)
        return hi is not None and hi <= self.parts[p].next_offset

    def _lag(self, p: int) -> int:
        """Records of partition p not absorbed yet (from the cached high watermark)."""
        hi = high_watermark(self.consumer, self.topic, p)
        return 0 if hi is None else max(0, hi - self.parts[p].next_offset)

    def _window_index(self, wm: int) -> int:
        return -1 if wm == NO_TIME else wm // self.slide_or_size

    @property
    def slide_or_size(self) -> int:
        return self.slide_ms or self.size_ms

    def _publish(self, closed_by_part: list[tuple[int, list[Partial]]]) -> None:
        msgs: list[PartialMessage] = []
        touched = set()
        for p, closed in closed_by_part:
            pw = self.parts[p]
            for c in closed:
                msgs += partial_messages(c, monitor=self.monitor, partition=p,
                                         n_partitions=self.n_partitions,
                                         profile_id=self.profile_id,
                                         counts={"consumer_lag": self._lag(p)})
                touched.add(p)
            idx = self._window_index(pw.watermark_ms)
            if idx > self._progress_sent.get(p, -1):
                msgs.append(PartialMessage(kind="progress", monitor=self.monitor, partition=p,
                                           n_partitions=self.n_partitions,
                                           watermark_ms=pw.watermark_ms,
                                           next_offset=pw.next_offset))
                self._progress_sent[p] = idx
                touched.add(p)
        if not msgs:
            return
        encoded = [(m.partition, m.to_bytes(), m.key) for m in msgs]
        for p, value, _ in encoded:  # the outbox goes into the state: module docstring
            self.parts[p].outbox.append(value)
        self._snapshot(touched, force=True)
        fault_point("source.after_state")
        for i, (_, value, key) in enumerate(encoded):
            if i:
                fault_point("source.between_partials", before=self._push)
            self.out.produce(self.partials_topic, value, key, kind="partial")
        self.out.wait_acked(self._stop)
        fault_point("source.after_partials")
        for p in touched:
            self.parts[p].outbox = []
            self._dirty.add(p)  # the stored state still holds the outbox: harmless, replaced
        self.stats.partials_sent += sum(1 for m in msgs if m.kind == "partial")

    def _push(self) -> None:
        self.out.flush_quietly(10)

    def _snapshot(self, parts: set[int], force: bool = False) -> None:
        parts = {p for p in parts if p in self.parts and (force or p in self._dirty)}
        if not parts:
            return
        if self._dead_letters_pending:  # acknowledged before a state moves past them
            self.out.wait_acked(self._stop)
            self._dead_letters_pending = False
            fault_point("source.after_dead_letter")
        for i, p in enumerate(sorted(parts)):
            if i:
                fault_point("source.between_states", before=self._push)
            self.out.produce(self.state_topic, self.parts[p].to_bytes(), str(p).encode(),
                             kind="state")
        self.out.wait_acked(self._stop)
        self._dirty.difference_update(parts)
        self._last_snapshot = time.monotonic()

    def _commit_lag_offsets(self) -> None:
        offs = [TopicPartition(self.topic, p, pw.next_offset) for p, pw in self.parts.items()
                if pw.next_offset > 0]
        if offs:
            try:
                self.consumer.commit(offsets=offs, asynchronous=True)
            except Exception as e:  # only a lag metric
                log.debug("offset commit failed: %s", e)
        for p, pw in self.parts.items():
            hi = high_watermark(self.consumer, self.topic, p, timeout_s=1)
            if hi is not None:
                self.stats.consumer_lag[p] = max(0, hi - pw.next_offset)
            if pw.max_event_ms != NO_TIME:
                self.stats.watermark_delay_ms[p] = int(time.time() * 1000) - pw.watermark_ms

    def close(self) -> None:
        """A clean stop: store every partition's state, then leave the group."""
        try:
            self._snapshot(set(self.parts), force=True)
            if self.labels is not None:
                self.labels.close(self)
            self.parts.clear()  # stored: the revoke that close() triggers has nothing to do
        finally:
            self.consumer.close()
