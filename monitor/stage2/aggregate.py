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
  and a replay computes the same one;
- model versions (``model.version_field``, partials with ``model_version``): a window closes
  into one ClosedWindow per version that has a partial there, in name order, each merged
  from its own partials and with its own volume baseline (the last :data:`MAX_VERSIONS`
  versions are kept). A version-less partial without events (the counters of a partition
  that had no versioned event in the window) is folded into the window's version with the
  most events; a window without events closes under the last version seen.

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

MAX_VERSIONS = 64  # versions whose volume baseline stage 2 keeps (the most recently used)


@dataclass
class Tables:
    """The durable state of stage 2: four dict-like tables."""

    partials: MutableMapping[str, bytes]  # "W:p" (or "W:p@version") -> PartialMessage bytes
    windows: MutableMapping[str, list]  # "W" -> partitions (or "p@version") with a partial
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
    model_version: str = ""  # the events' version (model.version_field); "": the config's


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
                slot: int | str = (f"{m.partition}@{m.model_version}" if m.model_version
                                   else m.partition)
                t.partials[f"{w}:{slot}"] = m.to_bytes()
                have = t.windows.get(str(w)) or []
                if slot not in have:
                    t.windows[str(w)] = sorted([*have, slot], key=_slot_order)
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
            out += self._close(nxt)
            fault_point("stage2.before_table_advance")
            nxt += self.slide_ms
            self.t.meta["next_window"] = nxt
            self.t.meta["closed_any"] = True
        return out

    def _close(self, start: int) -> list[ClosedWindow]:
        slots = list(self.t.windows.get(str(start)) or [])
        msgs = [PartialMessage.from_bytes(self.t.partials[f"{start}:{s}"]) for s in slots]
        by_version: dict[str, list[PartialMessage]] = {}
        for m in msgs:
            by_version.setdefault(m.model_version, []).append(m)
        named = {v: ms for v, ms in by_version.items() if v}
        if named and "" in by_version and not any(m.events for m in by_version[""]):
            lead = min(named, key=lambda v: (-sum(m.events for m in named[v]), v))
            named[lead] = sorted(named[lead] + by_version.pop(""), key=lambda m: m.partition)
            by_version = named
        if not by_version:
            by_version = {str(self.t.meta.get("last_version") or ""): []}
        out = [self._merge(start, v, ms) for v, ms in sorted(by_version.items())]
        busiest = min(out, key=lambda w: (-w.events, w.model_version))
        if busiest.events and busiest.model_version:
            self.t.meta["last_version"] = busiest.model_version
        for s in slots:
            del self.t.partials[f"{start}:{s}"]
        if str(start) in self.t.windows:
            del self.t.windows[str(start)]
        return out

    def _merge(self, start: int, version: str, msgs: list[PartialMessage]) -> ClosedWindow:
        bad: dict[str, int] = {}
        counts: dict[str, int] = {}
        for m in msgs:
            for k, v in m.bad.items():
                bad[k] = bad.get(k, 0) + v
            for k, v in m.counts.items():
                counts[k] = counts.get(k, 0) + v
        meta = self.t.meta
        recent_by = dict(meta.get("recent_events_by_version") or {})
        recent = [int(x) for x in (recent_by.get(version) if version
                                   else meta.get("recent_events")) or []]
        events = sum(m.events for m in msgs)
        blobs = [m.sketch for m in msgs if m.sketch is not None]
        closed = ClosedWindow(
            start_ms=start, end_ms=start + self.size_ms, events=events,
            late_events=sum(m.late_events for m in msgs), bad=dict(sorted(bad.items())),
            partitions=sorted({m.partition for m in msgs}),
            sketch=self.merge(blobs) if blobs else None,
            profile_ids=sorted({m.profile_id for m in msgs if m.profile_id}),
            counts=dict(sorted(counts.items())), recent_events=recent, model_version=version)
        if events and version:  # the most recently used versions' baselines are kept
            recent_by.pop(version, None)
            recent_by[version] = (recent + [events])[-self.history:]
            meta["recent_events_by_version"] = dict(list(recent_by.items())[-MAX_VERSIONS:])
        elif events:
            meta["recent_events"] = (recent + [events])[-self.history:]
        return closed


def _slot_order(slot: int | str) -> tuple[int, str]:
    """Partitions in order (then versions by name): the merge order of a window."""
    p, _, v = str(slot).partition("@")
    return int(p), v
