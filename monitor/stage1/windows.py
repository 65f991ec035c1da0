"""Stage 1's core: the event-time windows of one source partition, and what they emit.

A :class:`PartitionWindows` absorbs decoded batches of one partition in offset order and keeps
one sketch per open window. Everything it decides depends only on the events and their order
in the partition, never on how they were cut into batches:

- an event at an offset below ``next_offset`` was absorbed already and is skipped;
- the watermark *before* each event is the largest event time seen before it (in earlier
  batches and earlier in this batch) minus the allowed lateness, or a heartbeat's advance;
- an event whose window ended at or before that watermark is **late**: it is counted in the
  ``late_events`` of the window that is open at that point (the window of the largest event
  time seen so far), never added to a closed window, never dropped silently;
- a malformed message is counted, by reason, in that same "open" window;
- with a duplicate filter (``stream.event_id_field``), an event whose id was seen in this
  window or the ones just before (see :mod:`kernels.dedup`) is a **duplicate**: counted in
  ``counts["duplicates"]`` of the open window, and otherwise left out (not in the sketch,
  not in ``events``, not moving the watermark). The filter remembers the ids of the last
  few windows by each event's own window, so batch boundaries do not matter here either;
- ``samples`` (offset, unknown fields) of good events at sampled offsets are counted in the
  event's own windows: ``counts["schema_sampled"]`` and ``counts["schema_new:<field>"]``;
- when the watermark passes a window's end, the window closes: its :class:`Partial` (a full
  snapshot, not a delta) is ready to publish;
- with a batch that names each event's model version (``model.version_field``: a
  :class:`monitor.stage1.versions.VersionedBatch`), a window keeps one sketch and event count
  per version (``Partial.versions``); clock, lateness, duplicates and counters stay the
  partition's.

Tumbling windows (``slide == size``) and hopping windows (``slide`` divides ``size``; an event
belongs to ``size / slide`` windows) are supported. Window starts are aligned to the epoch.

The whole state (open sketches, counters, watermark, next offset) serializes to bytes, so the
owner of a partition can store it with its offset and restore it after a restart. It also
carries ``outbox``: the encoded messages (partials, progress) that the step which wrote this
state still has to publish; stage 1 re-publishes them on restore (see
:mod:`monitor.stage1.source`).

>>> w = PartitionWindows(partition=0, size_ms=1000, slide_ms=1000, lateness_ms=0,
...                      new_sketch=lambda: None)  # no batch given: counts only
>>> import numpy as np
>>> closed = w.absorb(np.array([10, 11, 12]), np.array([100, 200, 1500]), bad=[])
>>> [(p.window_start_ms, p.events) for p in closed]
[(0, 2)]
>>> w.next_offset, w.watermark_ms
(13, 1500)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson

NO_TIME = np.iinfo(np.int64).min


class Sketch(Protocol):
    """What a window holds: a kernels.WindowSketch, or anything with these verbs."""

    def update(self, batch: Any) -> Any: ...
    def merge(self, other: Any) -> Any: ...
    def to_bytes(self) -> bytes: ...


@dataclass
class Partial:
    """One partition's contribution to one window: everything needed to merge it."""

    partition: int
    window_start_ms: int
    window_end_ms: int
    events: int
    late_events: int
    bad: dict[str, int]
    sketch: Sketch | None  # None when no event landed here
    next_offset: int
    watermark_ms: int
    counts: dict[str, int] = field(default_factory=dict)  # duplicates, schema samples
    versions: dict[str, tuple[int, Sketch]] | None = None  # model version -> events, sketch


@dataclass
class _Window:
    sketch: Sketch | None = None
    events: int = 0
    late: int = 0
    bad: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    versions: dict[str, _Window] | None = None  # per model version: events and sketch


class PartitionWindows:
    """Open windows of one partition. See the module docstring for the rules."""

    def __init__(self, partition: int, size_ms: int, slide_ms: int | None, lateness_ms: int,
                 new_sketch: Callable[[], Sketch], dedup: Any = None) -> None:
        slide_ms = slide_ms or size_ms
        if size_ms <= 0 or slide_ms <= 0 or size_ms % slide_ms:
            raise ValueError("window size must be a positive multiple of the slide")
        self.partition = partition
        self.size_ms = size_ms
        self.slide_ms = slide_ms
        self.lateness_ms = lateness_ms
        self.new_sketch = new_sketch
        self.dedup = dedup  # a kernels.dedup.DuplicateFilter, or None
        self.windows: dict[int, _Window] = {}
        self.next_offset = 0
        self.max_event_ms = int(NO_TIME)
        self.watermark_ms = int(NO_TIME)
        self._pending_bad: dict[str, int] = {}
        self.outbox: list[bytes] = []  # messages to publish, stored with the state

    # -- absorbing -----------------------------------------------------------------------
    def absorb(self, offsets: np.ndarray, event_ms: np.ndarray, bad: list[tuple[int, str]],
               batch: Any = None, samples: list[tuple[int, tuple[str, ...]]] = ()
               ) -> list[Partial]:
        """Absorb one batch of this partition: good events (``offsets``, ``event_ms`` and the
        matching ``batch`` for the sketch), bad messages (``(offset, reason)``) and schema
        samples (``(offset, unknown fields)``). Returns the windows that closed, oldest
        first."""
        offsets = np.asarray(offsets, np.int64)
        event_ms = np.asarray(event_ms, np.int64)
        keep = offsets >= self.next_offset
        bad = [(o, r) for o, r in bad if o >= self.next_offset]
        last = max(int(offsets.max()) if offsets.size else -1, max((o for o, _ in bad), default=-1))
        if not keep.all():
            idx = np.flatnonzero(keep)
            offsets, event_ms = offsets[idx], event_ms[idx]
            batch = batch.take(idx) if batch is not None else None
        if (self.dedup is not None and batch is not None and batch.event_id_hash is not None
                and offsets.size):
            offsets, event_ms, batch = self._drop_duplicates(offsets, event_ms, batch)
        n = offsets.size
        prev_max = self.max_event_ms
        if n:
            # running max of event time *before* each event (this batch and earlier ones)
            cum = np.maximum.accumulate(event_ms)
            before = np.empty(n, np.int64)
            before[0] = self.max_event_ms
            before[1:] = np.maximum(cum[:-1], self.max_event_ms)
            wm_before = np.where(before == NO_TIME, NO_TIME, before - self.lateness_ms)
            wm_before = np.maximum(wm_before, self.watermark_ms)
            # the earliest window an event belongs to ends at start + size; a hopping event
            # belongs to several, late if the earliest of them closed (conservative, simple)
            last_start = event_ms - np.mod(event_ms, self.slide_ms)
            first_end = last_start - self.size_ms + self.slide_ms + self.size_ms
            late = first_end <= wm_before
            if late.any():
                open_at = np.where(before == NO_TIME, event_ms, before)
                self._count_late(open_at[late])
            ok = np.flatnonzero(~late)
            if ok.size:
                self._add(ok, last_start[ok], batch)
            if samples:
                self._count_samples(samples, offsets, late, last_start)
            self.max_event_ms = max(self.max_event_ms, int(cum[-1]))
        if bad:
            self._count_bad(bad, offsets, event_ms, prev_max)
        if n and self._pending_bad:
            # bad messages before the partition's first event count in that event's window
            w = self._window(self._open_window_of(int(event_ms[0])))
            for reason, c in self._pending_bad.items():
                w.bad[reason] = w.bad.get(reason, 0) + c
            self._pending_bad = {}
        self.next_offset = max(self.next_offset, last + 1)
        if self.max_event_ms != NO_TIME:
            self.watermark_ms = max(self.watermark_ms, self.max_event_ms - self.lateness_ms)
        return self._close()

    def _add(self, ok: np.ndarray, last_start: np.ndarray, batch: Any) -> None:
        k = self.size_ms // self.slide_ms
        for j in range(k):  # an event is in k windows; one vectorized pass per hop
            starts = last_start - j * self.slide_ms
            order = np.argsort(starts, kind="stable")
            uniq, first = np.unique(starts[order], return_index=True)
            bounds = list(first[1:]) + [order.size]
            for s, lo, hi in zip(uniq.tolist(), first.tolist(), bounds):
                sel = ok[order[lo:hi]]
                w = self._window(s)
                w.events += sel.size
                if batch is not None:
                    self._sketch(w, batch, np.sort(sel))

    def _sketch(self, w: _Window, batch: Any, rows: np.ndarray) -> None:
        """Sketch ``rows`` of ``batch`` in ``w``; a batch with model versions
        (``by_version``) sketches each version's rows in its own sub-window."""
        by_version = getattr(batch, "by_version", None)
        if by_version is None:
            if w.sketch is None:
                w.sketch = self.new_sketch()
            w.sketch.update(batch.take(rows))
            return
        if w.versions is None:
            w.versions = {}
        for name, sub in by_version(rows):
            v = w.versions.get(name)
            if v is None:
                v = w.versions[name] = _Window(self.new_sketch())
            v.events += sub.n_events
            v.sketch.update(sub)  # type: ignore[union-attr]

    def _drop_duplicates(self, offsets, event_ms, batch):
        """Remove the events the duplicate filter has seen; count each in the window open
        when it arrived (the window of the largest event time of the events kept before)."""
        dup = self.dedup.update(batch.event_id_hash, event_ms // self.slide_ms)
        if not dup.any():
            return offsets, event_ms, batch
        kept_t = np.where(dup, NO_TIME, event_ms)
        cum = np.maximum.accumulate(kept_t)
        before = np.empty_like(cum)
        before[0] = self.max_event_ms
        before[1:] = np.maximum(cum[:-1], self.max_event_ms)
        at = np.where(before == NO_TIME, event_ms, before)[dup]
        for s, c in zip(*np.unique(at - np.mod(at, self.slide_ms), return_counts=True)):
            w = self._window(int(s))
            w.counts["duplicates"] = w.counts.get("duplicates", 0) + int(c)
        idx = np.flatnonzero(~dup)
        return offsets[idx], event_ms[idx], batch.take(idx)

    def _count_samples(self, samples, offsets, late, last_start) -> None:
        """Schema samples of events that landed in windows (not late, not duplicates):
        counted per window with numpy; only samples that carry new fields loop."""
        k = self.size_ms // self.slide_ms
        so = np.array([o for o, _ in samples], np.int64)
        pos = np.minimum(np.searchsorted(offsets, so), offsets.size - 1)
        landed = (offsets[pos] == so) & ~late[pos]
        for j in range(k):
            starts = last_start[pos[landed]] - j * self.slide_ms
            for s, c in zip(*np.unique(starts, return_counts=True)):
                cnt = self._window(int(s)).counts
                cnt["schema_sampled"] = cnt.get("schema_sampled", 0) + int(c)
        for (_, names), i, ok in zip(samples, pos.tolist(), landed.tolist()):
            if not (ok and names):
                continue
            for j in range(k):
                cnt = self._window(int(last_start[i]) - j * self.slide_ms).counts
                for name in names:
                    cnt[f"schema_new:{name}"] = cnt.get(f"schema_new:{name}", 0) + 1

    def _window(self, start: int) -> _Window:
        w = self.windows.get(start)
        if w is None:
            w = self.windows[start] = _Window()
        return w

    def _open_window_of(self, t: int) -> int:
        return t - t % self.slide_ms

    def _count_late(self, open_at: np.ndarray) -> None:
        starts = open_at - np.mod(open_at, self.slide_ms)
        for s, c in zip(*np.unique(starts, return_counts=True)):
            self._window(int(s)).late += int(c)

    def _count_bad(self, bad: list[tuple[int, str]], offsets: np.ndarray,
                   event_ms: np.ndarray, prev_max: int) -> None:
        """Each bad message counts in the window open when it arrived: the window of the
        largest event time seen before its offset (bad path only: a loop per bad message)."""
        bad_off = np.array([o for o, _ in bad], np.int64)
        prior = np.full(bad_off.size, prev_max, np.int64)
        if offsets.size:
            pos = np.searchsorted(offsets, bad_off)  # good events before each bad one
            cum = np.maximum.accumulate(event_ms)
            has = pos > 0
            prior[has] = np.maximum(cum[pos[has] - 1], prev_max)
        for (_, reason), t in zip(bad, prior.tolist()):
            if t == NO_TIME:
                target = self._pending_bad
            else:
                target = self._window(self._open_window_of(int(t))).bad
            target[reason] = target.get(reason, 0) + 1

    # -- closing -------------------------------------------------------------------------
    def advance(self, watermark_ms: int) -> list[Partial]:
        """Move the watermark forward without events (an idle partition's heartbeat)."""
        self.watermark_ms = max(self.watermark_ms, int(watermark_ms))
        return self._close()

    def _close(self) -> list[Partial]:
        out = []
        for s in sorted(self.windows):
            if s + self.size_ms > self.watermark_ms:
                break
            w = self.windows.pop(s)
            out.append(Partial(self.partition, s, s + self.size_ms, w.events, w.late, w.bad,
                               w.sketch, self.next_offset, self.watermark_ms, w.counts,
                               None if w.versions is None else
                               {k: (v.events, v.sketch) for k, v in sorted(w.versions.items())}))
        return out

    # -- state ---------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The whole state; the sketches are stored with their own ``to_bytes``."""
        head = {"partition": self.partition, "size_ms": self.size_ms, "slide_ms": self.slide_ms,
                "lateness_ms": self.lateness_ms, "next_offset": self.next_offset,
                "max_event_ms": self.max_event_ms, "watermark_ms": self.watermark_ms,
                "pending_bad": self._pending_bad,
                "windows": [{"start": s, "events": w.events, "late": w.late, "bad": w.bad,
                             "counts": w.counts, "has_sketch": w.sketch is not None,
                             **({} if w.versions is None else {"versions": [
                                 [k, v.events] for k, v in sorted(w.versions.items())]})}
                            for s, w in sorted(self.windows.items())],
                "has_dedup": self.dedup is not None, "outbox": len(self.outbox)}
        blobs = [w.sketch.to_bytes() for _, w in sorted(self.windows.items())
                 if w.sketch is not None]
        blobs += [v.sketch.to_bytes() for _, w in sorted(self.windows.items())  # type: ignore
                  for _, v in sorted((w.versions or {}).items())]
        if self.dedup is not None:
            blobs.append(self.dedup.to_bytes())
        return frame(orjson.dumps(head), blobs + self.outbox)

    @classmethod
    def from_bytes(cls, data: bytes, new_sketch: Callable[[], Sketch],
                   load_sketch: Callable[[bytes], Sketch], dedup: Any = None
                   ) -> PartitionWindows:
        """Inverse of :meth:`to_bytes`. ``dedup`` is the fresh filter the config asks for:
        the stored one replaces it (a stored filter without a configured one is dropped)."""
        head, blobs = unframe(data)
        h = orjson.loads(head)
        n_out = h.get("outbox", 0)
        outbox = blobs[len(blobs) - n_out:] if n_out else []
        blobs = blobs[:len(blobs) - n_out]
        if h.get("has_dedup"):
            stored, blobs = blobs[-1], blobs[:-1]
            if dedup is not None:
                dedup = type(dedup).from_bytes(stored)
        self = cls(h["partition"], h["size_ms"], h["slide_ms"], h["lateness_ms"], new_sketch,
                   dedup)
        self.next_offset, self.max_event_ms = h["next_offset"], h["max_event_ms"]
        self.watermark_ms = h["watermark_ms"]
        self._pending_bad = h["pending_bad"]
        self.outbox = outbox
        it = iter(blobs)
        for w in h["windows"]:
            sk = load_sketch(next(it)) if w["has_sketch"] else None
            self.windows[w["start"]] = _Window(sk, w["events"], w["late"], w["bad"],
                                               w.get("counts", {}))
        for w in h["windows"]:  # the versions' sketches follow the windows' own
            if "versions" in w:
                self.windows[w["start"]].versions = {
                    name: _Window(load_sketch(next(it)), events)
                    for name, events in w["versions"]}
        return self


def frame(head: bytes, blobs: list[bytes]) -> bytes:
    """``u32 n, then n+1 (u32 length, bytes)``: a JSON head followed by binary blobs."""
    parts = [struct.pack("<I", len(blobs)), struct.pack("<I", len(head)), head]
    for b in blobs:
        parts += [struct.pack("<I", len(b)), b]
    return b"".join(parts)


def unframe(data: bytes) -> tuple[bytes, list[bytes]]:
    mv = memoryview(data)
    (n,) = struct.unpack_from("<I", mv, 0)
    pos, out = 4, []
    for _ in range(n + 1):
        (ln,) = struct.unpack_from("<I", mv, pos)
        out.append(bytes(mv[pos + 4: pos + 4 + ln]))
        pos += 4 + ln
    return out[0], out[1:]

