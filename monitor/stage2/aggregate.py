"""Stage 2's core: collect partials, decide when a window is complete, merge it.

Plain Python over dict-like tables, so the same code runs over Faust's changelog-backed
tables (in :mod:`monitor.stage2.agents`) and over plain dicts (in replay and in tests).

Rules:
- a partial for window W from partition p replaces any earlier one for (W, p) — partials are
  full snapshots, so a re-sent partial is harmless;
- progress messages carry their partition's watermark; window W closes when the watermarks
  of *all* source partitions have passed W's end. A partition publishes its partials before
  the progress that passes them, and one partition's messages are in order on the partials
  topic, so its partial for W (if it had events there) has arrived by then;
- windows close in order, one slide apart, from the first window seen on: a window in which
  no partition had an event closes as an empty window (a silent producer shows up as a
  window with zero events, not as a gap);
- sketches are merged in partition order, so one worker or many give the same bytes;
- a partial that arrives for a window already closed is counted (``late_partials``) and
  otherwise ignored: the report that went out stays the only one;
- the event counts of the last ``history`` non-empty windows are kept in the meta table and
  handed to each closing window (``recent_events``): the volume baseline survives restarts
  and a replay computes the same one.

>>> from monitor.stage1.partials import PartialMessage
>>> agg = WindowAggregator(size_ms=10, slide_ms=10, merge=lambda sketches: None,
...                        tables=Tables.in_memory())
>>> msg = PartialMessage("partial", "m", 0, 1, watermark_ms=25, next_offset=3,
...                      window_start_ms=0, window_end_ms=10, events=3)
>>> agg.on_message(msg)
[]
>>> [(w.start_ms, w.events) for w in agg.on_message(
...     PartialMessage("progress", "m", 0, 1, watermark_ms=25, next_offset=3))]
[(0, 3), (10, 0)]
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from monitor.faults import fault_point
from monitor.stage1.partials import PartialMessage


@dataclass
class Tables:
    """The durable state of stage 2: four dict-like tables."""

    partials: MutableMapping[str, bytes]  # "W:p" -> PartialMessage bytes
    windows: MutableMapping[str, list[int]]  # "W" -> partitions with a partial for W
    progress: MutableMapping[str, int]  # "p" -> that partition's watermark
    meta: MutableMapping[str, Any]  # next_window, n_partitions, late_partials

    @classmethod
    def in_memory(cls) -> "Tables":
        return cls({}, {}, {}, {})


@dataclass
class ClosedWindow:
    start_ms: int
    end_ms: int
    events: int
    late_events: int
    bad: dict[str, int]
    partitions: list[int]
    sketch: Any  # the merged sketch, or None when no partition had an event
    profile_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # duplicates, schema samples
    recent_events: list[int] = field(default_factory=list)  # earlier non-empty windows


class WindowAggregator:
    def __init__(self, size_ms: int, slide_ms: int | None,
                 merge: Callable[[list[bytes]], Any], tables: Tables, history: int = 12) -> None:
        self.size_ms = size_ms
        self.history = history
        self.slide_ms = slide_ms or size_ms
        self.merge = merge  # sketch bytes in partition order -> merged sketch
        self.t = tables

    def on_message(self, m: PartialMessage) -> list[ClosedWindow]:
        t = self.t
        n = max(int(t.meta.get("n_partitions", 0)), m.n_partitions)
        if n != t.meta.get("n_partitions"):
            t.meta["n_partitions"] = n
        if m.kind == "partial":
            w = m.window_start_ms
            nxt = t.meta.get("next_window")
            if nxt is not None and w < nxt and t.meta.get("closed_any"):
                t.meta["late_partials"] = int(t.meta.get("late_partials", 0)) + 1
            else:
                t.partials[f"{w}:{m.partition}"] = m.to_bytes()
                have = t.windows.get(str(w)) or []
                if m.partition not in have:
                    t.windows[str(w)] = sorted([*have, m.partition])
                if nxt is None or w < nxt:  # nothing closed yet: start at the earliest
                    t.meta["next_window"] = w
        if m.kind == "progress":  # only progress moves a partition's watermark here: a
            # partial's watermark may already be past a later window whose partial follows
            key = str(m.partition)
            if m.watermark_ms > int(t.progress.get(key, -(2**62))):
                t.progress[key] = m.watermark_ms
        return self._close_ready()

    def low_watermark(self) -> int | None:
        n = int(self.t.meta.get("n_partitions", 0))
        if n == 0:
            return None
        wms = [self.t.progress.get(str(p)) for p in range(n)]
        if any(w is None for w in wms):
            return None
        return min(int(w) for w in wms)

    def _close_ready(self) -> list[ClosedWindow]:
        low = self.low_watermark()
        nxt = self.t.meta.get("next_window")
        out: list[ClosedWindow] = []
        if low is None or nxt is None:
            return out
        nxt = int(nxt)
        while nxt + self.size_ms <= low:
            out.append(self._close(nxt))
            fault_point("stage2.before_table_advance")
            nxt += self.slide_ms
            self.t.meta["next_window"] = nxt
            self.t.meta["closed_any"] = True
        return out

    def _close(self, start: int) -> ClosedWindow:
        parts = list(self.t.windows.get(str(start)) or [])
        msgs = [PartialMessage.from_bytes(self.t.partials[f"{start}:{p}"]) for p in parts]
        bad: dict[str, int] = {}
        counts: dict[str, int] = {}
        for m in msgs:
            for k, v in m.bad.items():
                bad[k] = bad.get(k, 0) + v
            for k, v in m.counts.items():
                counts[k] = counts.get(k, 0) + v
        recent = [int(x) for x in self.t.meta.get("recent_events") or []]
        events = sum(m.events for m in msgs)
        blobs = [m.sketch for m in msgs if m.sketch is not None]
        closed = ClosedWindow(
            start_ms=start, end_ms=start + self.size_ms, events=events,
            late_events=sum(m.late_events for m in msgs), bad=dict(sorted(bad.items())),
            partitions=parts, sketch=self.merge(blobs) if blobs else None,
            profile_ids=sorted({m.profile_id for m in msgs if m.profile_id}),
            counts=dict(sorted(counts.items())), recent_events=recent)
        if events:
            self.t.meta["recent_events"] = (recent + [events])[-self.history:]
        for p in parts:
            del self.t.partials[f"{start}:{p}"]
        if str(start) in self.t.windows:
            del self.t.windows[str(start)]
        return closed
