"""Stage 1's side of the live label stream: the label topic beside the prediction topic.

The label topic is partitioned like the prediction topic and keyed by event id, so partition p
of the labels meets partition p of the predictions. :class:`~monitor.stage1.source.SourceStage`
subscribes to both with the ``range`` assignor (per topic, partitions in order over the members
in order: with equal partition counts partition p of both topics goes to the same member) and
hands this side the label messages, each prediction partition's decoded batch, and its
assignments.

Per partition a :class:`~monitor.stage1.labels.PartitionLabels` joins the two streams. Its
stored state is a record of its own in the stage-1 state topic (key ``labels:<p>``) that holds
the join (pending predictions, open windows' performance sketches, the next prediction offset
and the **next label offset**) and an **outbox**, the same way the windows' state does (see
:mod:`monitor.stage1.source`): every ``emit_interval_s`` the windows whose performance changed
become :class:`~monitor.stage1.labels.PerformancePartial` snapshots (messages of kind
``performance`` on the partials topic), go into the outbox, the state is written and
acknowledged, then the messages are sent and acknowledged, then the outbox is emptied. A
restored state re-publishes its outbox first. On assignment the label partition is sought to
the stored next label offset and the prediction partition to the smaller of the two stored
next offsets (the windows' and the join's): each side skips what it absorbed already, so a
restart counts no label twice and loses no waiting prediction.

Labels are decoded per batch with Arrow's JSON reader and their values compared with the
positive label on the Arrow column (:mod:`monitor.stage1.label_values`; no Python loop over
the messages); a batch Arrow refuses is decoded message by message to find the bad ones, which are counted
(``bad_labels``) and dead-lettered with their reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from monitor.faults import fault_point
from monitor.stage1.columns import id_column, id_hashes, message_columns
from monitor.stage1.cells import Cells
from monitor.stage1.label_values import label_codes, label_codes_py
from monitor.stage1.labels import PartitionLabels
from monitor.stage1.partials import PartialMessage
from monitor.stage1.state_topic import load_states
from monitor.stage1.windows import NO_TIME

log = logging.getLogger("streamdrift.labels")

STATE_PREFIX = "labels:"


@dataclass
class LabelStats:
    labels_in: int = 0
    bad_labels: dict[str, int] = field(default_factory=dict)
    performance_partials_sent: int = 0


def state_bytes(labels: PartitionLabels, outbox: list[bytes]) -> bytes:
    from monitor.stage1.windows import frame

    return frame(orjson.dumps({"outbox": len(outbox)}), [labels.to_bytes(), *outbox])


def state_from_bytes(data: bytes) -> tuple[PartitionLabels, list[bytes]]:
    from monitor.stage1.windows import unframe

    head, blobs = unframe(data)
    n = orjson.loads(head)["outbox"]
    return PartitionLabels.from_bytes(blobs[0]), list(blobs[1: 1 + n])


class LabelSide:
    """The label join of the partitions one stage-1 worker owns (module docstring)."""

    def __init__(self, *, topic: str, id_field: str, label_field: str, event_time_field: str,
                 positive_label: Any, window_ms: int, lateness_ms: int, max_delay_ms: int,
                 cells: Cells, columns: Callable[[Any], dict[str, Any]],
                 emit_interval_s: float = 5.0, max_pending: int = 1 << 22) -> None:
        self.topic = topic
        self.id_field, self.label_field = id_field, label_field
        self.event_time_field, self.positive_label = event_time_field, positive_label
        self.window_ms, self.lateness_ms, self.max_delay_ms = window_ms, lateness_ms, max_delay_ms
        self.cells = cells
        self.columns = columns  # decoded prediction batch -> join columns
        self.emit_interval_s = emit_interval_s
        self.max_pending = max_pending
        self.parts: dict[int, PartitionLabels] = {}
        self.outbox: dict[int, list[bytes]] = {}
        self.dirty: set[int] = set()
        self.stats = LabelStats()
        self._last_emit = time.monotonic()
        self._mark_sent: dict[int, int] = {}  # per partition: the watermark last sent

    # -- assignment ----------------------------------------------------------------------
    def on_assign(self, src, pred_tps: list, label_tps: list) -> None:
        """Restore or start each partition's join, seek both topics (module docstring) and
        re-publish what restored outboxes still had to send."""
        mine = {tp.partition for tp in pred_tps}
        lab = {tp.partition for tp in label_tps}
        if mine != lab:
            log.error("label partitions %s do not follow prediction partitions %s: the label "
                      "topic must have as many partitions as the prediction topic",
                      sorted(lab), sorted(mine))
        stored = load_states(src.client_config, f"{src.monitor}-state-reader", src.state_topic,
                             mine | lab, prefix=STATE_PREFIX)
        for p in sorted(mine | lab):
            if p in stored:
                self.parts[p], self.outbox[p] = state_from_bytes(stored[p])
            else:
                self.parts[p] = PartitionLabels(p, self.window_ms, self.lateness_ms,
                                                self.max_delay_ms, self.cells, self.max_pending)
                self.outbox[p] = []
        for tp in label_tps:
            if tp.partition in stored:
                tp.offset = self.parts[tp.partition].next_label_offset
        for tp in pred_tps:
            pl = self.parts[tp.partition]
            if tp.partition in stored:
                nxt = pl.next_prediction_offset
                tp.offset = nxt if tp.offset < 0 else min(tp.offset, nxt)
            elif tp.offset >= 0:  # labels newly on: the join starts where the windows are
                pl.next_prediction_offset = tp.offset
        log.info("label join of partitions %s (restored for %s)", sorted(mine | lab),
                 sorted(stored))
        # a first state now, so that a crash before the first emission loses nothing
        self.snapshot(src, (mine | lab) - set(stored), force=True)
        self._send(src, sorted(p for p in stored if self.outbox.get(p)))

    def on_revoke(self, src, parts: set[int], write: bool) -> None:
        if write:
            self.snapshot(src, parts & set(self.parts), force=True)
        for p in parts:
            self.parts.pop(p, None)
            self.outbox.pop(p, None)
            self.dirty.discard(p)
            self._mark_sent.pop(p, None)

    # -- absorbing -----------------------------------------------------------------------
    def absorb_predictions(self, p: int, batch, next_offset: int | None = None) -> None:
        """Partition ``p``'s good events of a batch; ``next_offset``: past the last message
        of ``p`` in the batch, bad ones included (the join has seen them all)."""
        pl = self.parts.get(p)
        if pl is None:
            return
        if batch.n_events:
            c = self.columns(batch)
            pl.absorb_predictions(c["offset"], c["time"], c["id"], c["score"], c["pred"],
                                  c["slice"], c["group"])
            self.dirty.add(p)
        if next_offset is not None and next_offset > pl.next_prediction_offset:
            pl.next_prediction_offset = int(next_offset)
            self.dirty.add(p)

    def absorb_labels(self, src, msgs: list) -> None:
        """Label messages of one consumed batch (any partitions, offset order each)."""
        values, part, offsets, ts = message_columns(msgs)
        ids, t, label, ok = self._decode(src, msgs, values, ts)
        self.stats.labels_in += int(ok.sum())
        for p in np.unique(part).tolist():
            pl = self.parts.get(p)
            if pl is None:
                continue
            sel = np.flatnonzero((part == p) & ok)
            if sel.size:
                pl.absorb_labels(offsets[sel], t[sel], ids[sel], label[sel])
            # bad labels move the offset too: they were counted and dead-lettered
            pl.next_label_offset = max(pl.next_label_offset,
                                       int(offsets[part == p].max()) + 1)
            self.dirty.add(p)

    def _decode(self, src, msgs: list, values: list, ts: np.ndarray):
        values = [v or b"{}" for v in values]  # an empty one: a row without an id
        n = len(values)
        bad: list[tuple[int, str]] = []
        try:
            table = pj.read_json(pa.py_buffer(b"\n".join(values)),
                                 parse_options=pj.ParseOptions(newlines_in_values=True))
            if table.num_rows != n:
                raise ValueError("row count")
            cols = set(table.column_names)

            def col(name):
                return table.column(name).combine_chunks() if name in cols else None

            idc, tc = col(self.id_field), col(self.event_time_field)
            label = label_codes(col(self.label_field), self.positive_label, n)
            if tc is not None:
                tc = pc.cast(tc, pa.int64(), safe=False) if pa.types.is_integer(tc.type) or \
                    pa.types.is_floating(tc.type) else None
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
            idc, labels, tc, bad = self._decode_slowly(values)
            label = label_codes_py(labels, self.positive_label)
        if idc is None:
            idc = pa.nulls(n, pa.string())
        if not pa.types.is_string(idc.type):
            idc = id_column(idc.to_pylist())
        ids = id_hashes(idc)
        if tc is not None:
            t = np.asarray(tc.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
            t = np.where(t >= 0, t, ts)  # no event time: the message's timestamp
        else:
            t = ts.copy()
        ok = (ids != 0) & (label >= 0)
        bad_rows = {i for i, _ in bad}
        reasons = bad + [(int(i), "missing_id" if ids[i] == 0 else "bad_label")
                         for i in np.flatnonzero(~ok) if int(i) not in bad_rows]
        if reasons:
            ok[[i for i, _ in reasons]] = False
            self._dead_letter(src, msgs, reasons)
        return ids, t, label, ok

    def _decode_slowly(self, values: list[bytes]):
        """The bad path (a batch Arrow refused): message by message; malformed ones become
        empty rows, named in the returned reasons."""
        ids, labels, times, bad = [], [], [], []
        for i, v in enumerate(values):
            try:
                d = orjson.loads(v)
                if not isinstance(d, dict):
                    raise ValueError("not an object")
            except ValueError:
                d = {}
                bad.append((i, "malformed"))
            ids.append(d.get(self.id_field))
            labels.append(d.get(self.label_field))
            x = d.get(self.event_time_field)
            times.append(int(x) if isinstance(x, (int, float)) and not isinstance(x, bool)
                         else None)
        return id_column(ids), labels, pa.array(times, pa.int64()), bad

    def _dead_letter(self, src, msgs: list, reasons: list[tuple[int, str]]) -> None:
        for i, reason in reasons:
            m = msgs[i]
            self.stats.bad_labels[reason] = self.stats.bad_labels.get(reason, 0) + 1
            headers = [("streamdrift.reason", f"label_{reason}".encode()),
                       ("streamdrift.source",
                        f"{m.topic()}:{m.partition()}:{m.offset()}".encode())]
            value, key, headers = src.dead_letter_copy(m.value(), m.key(), headers)
            src.out.produce(src.dead_letter_topic, value, key, headers, kind="dead_letter")
        src._dead_letters_pending = True

    # -- emitting ------------------------------------------------------------------------
    def maybe_emit(self, src, now: float, force: bool = False) -> None:
        """Every ``emit_interval_s``: the changed windows' snapshots through the outbox.

        A partition's prediction watermark here is the larger of the join's own (its latest
        prediction time less the lateness) and, once the join has seen every message the
        windows saw (not so right after a restart, when the join's stored state may be older
        than the windows'), the windows' (:mod:`monitor.stage1.source`), which the idle
        heartbeat moves on for a partition without new predictions: a partition that is
        empty, or went quiet, must not hold the other partitions' performance judgement
        back. A partition with no window to send but a watermark past
        the one it last sent sends the watermark alone (a message without a sketch)."""
        if not force and now - self._last_emit < self.emit_interval_s:
            return
        self._last_emit = now
        touched, alone = set(), []
        for p in sorted(self.parts):
            pl = self.parts[p]
            pw = src.parts.get(p)
            mark = pl.prediction_watermark_ms
            if pw is not None and pl.next_prediction_offset >= pw.next_offset:
                mark = max(mark, int(pw.watermark_ms))  # the join saw what the windows saw
            revs = pl.revisions(mark)
            if not revs and mark <= self._mark_sent.get(p, int(NO_TIME)):
                continue
            self._mark_sent[p] = mark
            common = dict(kind="performance", monitor=src.monitor, partition=p,
                          n_partitions=src.n_partitions, next_offset=pl.next_label_offset,
                          profile_id=src.profile_id)
            if not revs:  # the watermark alone: nothing to store, a lost one is sent again
                alone.append((p, PartialMessage(**common, watermark_ms=mark).to_bytes()))
                continue
            # a message's watermark is the next emitted window's start (the last one's: the
            # partition's prediction watermark): when stage 2 sees p's watermark pass a
            # window, it has already seen p's partial of that window
            marks = [r.window_start_ms for r in revs[1:]] + [mark]
            self.outbox[p] += [PartialMessage(**common, watermark_ms=min(m, mark),
                                              window_start_ms=r.window_start_ms,
                                              window_end_ms=r.window_end_ms,
                                              events=int(r.predictions.sum()),
                                              sketch=r.to_bytes()).to_bytes()
                               for r, m in zip(revs, marks)]
            self.dirty.add(p)
            touched.add(p)
        self.snapshot(src, set(self.dirty), force=False)
        self._send(src, sorted(touched))
        for p, value in alone:  # after p's partials (same key): acknowledged with the next
            src.out.produce(src.partials_topic, value, str(p).encode(), kind="partial")

    def _send(self, src, parts: list[int]) -> None:
        if not parts:
            return
        fault_point("labels.after_state")
        n = 0
        for p in parts:
            for value in self.outbox[p]:
                src.out.produce(src.partials_topic, value, str(p).encode(), kind="partial")
                n += 1
        src.out.wait_acked(src._stop)
        fault_point("labels.after_partials")
        for p in parts:
            self.outbox[p] = []
            self.dirty.add(p)  # the stored state still holds the outbox: harmless, replaced
        self.stats.performance_partials_sent += n

    def snapshot(self, src, parts: set[int], force: bool = False) -> None:
        parts = {p for p in parts if p in self.parts and (force or p in self.dirty)}
        if not parts:
            return
        if src._dead_letters_pending:
            src.out.wait_acked(src._stop)
            src._dead_letters_pending = False
        for p in sorted(parts):
            src.out.produce(src.state_topic, state_bytes(self.parts[p], self.outbox[p]),
                            f"{STATE_PREFIX}{p}".encode(), kind="state")
        src.out.wait_acked(src._stop)
        self.dirty.difference_update(parts)

    def close(self, src) -> None:
        self.maybe_emit(src, time.monotonic(), force=True)
        self.snapshot(src, set(self.parts), force=True)
        self.parts.clear()  # stored: the revoke that closing triggers has nothing to do
