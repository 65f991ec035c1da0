"""``streamdrift replay``: the same windows and statistics over files, no Kafka.

Rows are read with pyarrow (Parquet, CSV or JSON lines), decoded to columns by the same
decoder the live path uses for Arrow data, and pushed through the same
:class:`PartitionWindows`, :class:`WindowAggregator` and :class:`Evaluator`. If the file has
a ``_partition`` column (and optionally ``_offset``), rows are windowed per partition as the
live monitor would window them; otherwise the file is one partition in row order. A
``_timestamp`` column (ms) stands in for the Kafka timestamps: the event-time field's
fallback and, with ``checks.quality.max_event_delay``, the ingest time of freshness. As on the
live path, an event more than ``stream.max_future_skew`` after its ``_timestamp`` (or, without
one, after now) is bad (``future_event_time``) and moves no window.

At the end of the file every window closes (the stream is over), unlike the live path, where
the last window waits for more events or the idle timeout.

A replay that can write no window says why (:func:`why_nothing`): an empty input, no
event-time field in it, every event bad (with the top reasons). Event times of the wrong
magnitude for ``stream.event_time.unit`` are a config error at the first batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from monitor.stage2.aggregate import Tables, WindowAggregator
from monitor.config import MonitorConfig
from monitor.errors import StreamdriftError
from monitor.stage1.event_time import check_table_unit, reject_future
from monitor.stage1.partials import PartialMessage
from monitor.stage1.versions import partial_messages
from monitor.records import WindowReport
from monitor.stage1.windows import PartitionWindows

@dataclass
class ReplaySummary:
    """What a replay read: rows, good events, bad events by reason (filled as it goes)."""
    rows: int = 0
    events: int = 0
    bad: Counter = field(default_factory=Counter)


def check_input(cfg: MonitorConfig, table: pa.Table) -> None:
    """Raise :class:`StreamdriftError` (one line) when ``table`` cannot give a single window:
    no rows, or no event time in it; and :class:`~monitor.errors.ConfigError` when its event
    times do not fit ``stream.event_time.unit``."""
    if table.num_rows == 0:
        raise StreamdriftError("replay wrote no window: the input has no rows")
    et = cfg.stream.event_time
    cols = ", ".join(c for c in table.column_names[:12])
    cols += ", ..." if table.num_columns > 12 else ""
    if et is not None and et.field not in table.column_names:
        raise StreamdriftError(
            f"replay wrote no window: the event-time field {et.field!r} "
            f"(stream.event_time.field) is in none of the {table.num_rows} rows; the input "
            f"has the columns {cols}: set stream.event_time.field to the one with the time")
    if et is None and "_timestamp" not in table.column_names:
        raise StreamdriftError(
            "replay wrote no window: no event time: set stream.event_time.field (the input "
            f"has no _timestamp column either); it has the columns {cols}")
    if et is not None:
        check_table_unit(table, et.field, et.unit)


def why_nothing(summary: ReplaySummary) -> str:
    """The one line that says why a replay wrote no window."""
    if summary.events == 0 and summary.bad:
        top = ", ".join(f"{r} {n}" for r, n in summary.bad.most_common(3))
        return (f"replay wrote no window: all {sum(summary.bad.values())} events were bad "
                f"({top})")
    return (f"replay wrote no window: {summary.rows} rows gave {summary.events} good events "
            "and no window closed")


def replay(cfg: MonitorConfig, profile, table: pa.Table, batch_rows: int = 10_000,
           progress: bool | None = None,
           summary: ReplaySummary | None = None) -> Iterator[WindowReport]:
    """Window reports of ``table``, in window order. On a terminal (or with
    ``progress=True``) a bar shows events decoded, then events windowed, with events/s and
    the time left. ``summary`` (if given) is filled with what was read."""
    from monitor.progress import bar

    from monitor.stage2.evaluate import Evaluator
    from monitor.stages import make_decoder, merge_sketches, version_gate, window_parts

    summary = summary if summary is not None else ReplaySummary()
    summary.rows = table.num_rows
    if table.num_rows:
        et = cfg.stream.event_time
        if et is not None:
            check_table_unit(table, et.field, et.unit)

    parts_of = window_parts(cfg, profile)
    if "_partition" in table.column_names:
        part = table.column("_partition").to_numpy().astype(np.int64)
    else:
        part = np.zeros(table.num_rows, np.int64)
    if "_offset" in table.column_names:
        offs = table.column("_offset").to_numpy().astype(np.int64)
    else:
        offs = np.zeros(table.num_rows, np.int64)
        for p in np.unique(part):
            sel = part == p
            offs[sel] = np.arange(int(sel.sum()))
    parts = sorted(np.unique(part).tolist())
    n_parts = (max(parts) + 1) if parts else 1
    w = cfg.windows
    agg = WindowAggregator(w.size_ms, w.slide_ms,
                           lambda b: merge_sketches(b, parts_of["load_sketch"]),
                           Tables.in_memory(), cfg.checks.quality.volume_baseline_windows)
    ev = Evaluator(cfg, profile)

    def emit(p: int, pw: PartitionWindows, closed) -> Iterator[WindowReport]:
        for c in closed:
            for msg in partial_messages(c, monitor=cfg.monitor, partition=p,
                                        n_partitions=n_parts, profile_id=profile.profile_id):
                for done in agg.on_message(msg):
                    yield ev.report(done)
        msg = PartialMessage("progress", cfg.monitor, p, n_parts, pw.watermark_ms,
                             pw.next_offset)
        for done in agg.on_message(msg):
            yield ev.report(done)

    decoder = make_decoder(cfg, profile)
    gate = version_gate(cfg)
    stamps = None
    if "_timestamp" in table.column_names:  # null: no Kafka timestamp (-1, as librdkafka says)
        import pyarrow.compute as pc

        stamps = pc.fill_null(table.column("_timestamp").cast(pa.int64()), -1).to_numpy()
    decoded = []  # (partition, PartitionWindows, [(batch, bad, samples, rows)])
    end_ms = None
    shown = bar(table.num_rows, "replay: decoding", enabled=progress)
    for p in range(n_parts):
        idx = np.flatnonzero(part == p)
        idx = idx[np.argsort(offs[idx], kind="stable")]
        batches = []
        for lo in range(0, idx.size, batch_rows):
            rows = idx[lo: lo + batch_rows]
            # a contiguous run of rows (always, for a file without _partition) is a zero-copy
            # slice; take() on a chunked table concatenates its chunks on every call
            contiguous = rows[-1] - rows[0] + 1 == rows.size and bool(np.all(np.diff(rows) > 0))
            part_rows = table.slice(int(rows[0]), rows.size) if contiguous \
                else table.take(pa.array(rows))
            row_ts = stamps[rows] if stamps is not None else np.full(rows.size, -1, np.int64)
            # as live: an event far ahead of its timestamp (or of now) is future_event_time
            dec = reject_future(decoder.decode_table(part_rows, offsets=offs[rows],
                                                     timestamps_ms=row_ts),
                                row_ts, cfg.stream.max_future_skew_ms)
            vers = None
            if gate is not None:  # model.version_field: as live (stage1/versions.py)
                dec, _, vers = gate.read(dec, part_rows, offs[rows])
            bad = [(b.offset, b.reason) for b in dec.bad]
            summary.bad.update(r for _, r in bad)
            summary.events += dec.batch.n_events
            samples = [(o, names) for _, o, names in dec.samples]
            batches.append((dec.batch, vers, bad, samples, rows.size))
            shown.update(rows.size)
            if dec.batch.n_events:
                t = int(dec.batch.event_time_ms.max())
                end_ms = t if end_ms is None else max(end_ms, t)
        new_dedup = parts_of["new_dedup"]
        pw = PartitionWindows(p, w.size_ms, w.slide_ms, w.allowed_lateness_ms,
                              parts_of["new_sketch"], new_dedup() if new_dedup else None)
        decoded.append((p, pw, batches))
    # the stream is over: every window up to the last event closes
    last = end_ms if end_ms is not None else 0
    final_wm = last - last % (w.slide_ms or w.size_ms) + w.size_ms
    shown.reset(total=table.num_rows)
    shown.set_description("replay: windowing")
    for p, pw, batches in decoded:
        for batch, vers, bad, samples, n_rows in batches:
            if vers is not None:  # the bound on versions, as live: stage1/versions.py
                sel = np.arange(batch.n_events)
                over = vers.admit(pw, sel)
                bad = sorted(bad + [(b.offset, b.reason) for b in over])
                summary.bad.update(b.reason for b in over)
                summary.events -= len(over)
                sel = vers.admitted(sel)
                batch = vers.batch(batch.take(sel), sel)
            closed = pw.absorb(batch.offset, batch.event_time_ms, bad, batch, samples)
            shown.update(n_rows)
            yield from emit(p, pw, closed)
        yield from emit(p, pw, pw.advance(final_wm))
    shown.close()


def write_reports(reports, path: str | Path) -> int:
    n = 0
    with open(path, "wb") as f:
        for r in reports:
            f.write(orjson.dumps(r.to_dict()) + b"\n")
            n += 1
    return n
