"""Event-time windows of one partition: batch boundaries never change what a window holds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.windows import PartitionWindows, frame, unframe


class OffsetBatch:
    """A batch that only carries offsets, for a sketch that records them."""

    def __init__(self, offsets):
        self.offset = np.asarray(offsets, np.int64)

    @property
    def n_events(self):
        return self.offset.size

    def take(self, idx):
        return OffsetBatch(self.offset[idx])


class OffsetSketch:
    def __init__(self, offsets=()):
        self.offsets = list(offsets)

    def update(self, b):
        self.offsets += b.offset.tolist()
        return self

    def merge(self, o):
        return OffsetSketch(self.offsets + o.offsets)

    def to_bytes(self):
        return np.asarray(self.offsets, np.int64).tobytes()

    @classmethod
    def from_bytes(cls, b):
        return cls(np.frombuffer(b, np.int64).tolist())


def run(times, bad_at, cuts, size=100, slide=None, lateness=20, restart_at=None):
    """Feed one partition's events in batches cut at ``cuts``; optionally serialize and
    restore the state at a cut and replay from an earlier offset (as after a crash)."""
    n = len(times)
    offsets = np.arange(n, dtype=np.int64)
    is_bad = np.zeros(n, bool)
    is_bad[list(bad_at)] = True
    w = PartitionWindows(0, size, slide, lateness, OffsetSketch)
    closed = []
    edges = [0] + sorted(set(c for c in cuts if 0 < c < n)) + [n]
    i = 0
    while i < len(edges) - 1:
        lo, hi = edges[i], edges[i + 1]
        sl = slice(lo, hi)
        good = ~is_bad[sl]
        o = offsets[sl][good]
        t = np.asarray(times, np.int64)[sl][good]
        bad = [(int(x), "malformed") for x in offsets[sl][~good]]
        closed += w.absorb(o, t, bad, OffsetBatch(o))
        if restart_at is not None and i == restart_at:
            # crash: restore the state, then the consumer re-delivers from an older offset
            w = PartitionWindows.from_bytes(w.to_bytes(), OffsetSketch, OffsetSketch.from_bytes)
            edges = edges[: i + 1] + [max(0, lo - 3)] + [e for e in edges[i + 1:] if e > lo]
            edges = sorted(set(edges))
            restart_at = None
            i = edges.index(max(0, lo - 3))
            continue
        i += 1
    return w, closed


def summary(closed):
    return [(p.window_start_ms, sorted(p.sketch.offsets) if p.sketch else [], p.events,
             p.late_events, p.bad) for p in closed]


times_st = st.lists(st.integers(0, 1000), min_size=1, max_size=200)


@settings(max_examples=150, deadline=None)
@given(times=times_st, data=st.data())
def test_batch_boundaries_do_not_matter(times, data):
    n = len(times)
    cuts = data.draw(st.lists(st.integers(0, n), max_size=10))
    bad_at = data.draw(st.sets(st.integers(0, n - 1), max_size=5))
    slide = data.draw(st.sampled_from([None, 50, 25]))
    _, whole = run(times, bad_at, [], slide=slide)
    _, cut = run(times, bad_at, cuts, slide=slide)
    assert summary(cut) == summary(whole)


@settings(max_examples=100, deadline=None)
@given(times=times_st, data=st.data())
def test_restart_and_redelivery_count_every_event_once(times, data):
    n = len(times)
    cuts = data.draw(st.lists(st.integers(1, n), min_size=1, max_size=6))
    restart = data.draw(st.integers(0, len(set(cuts))))
    _, whole = run(times, set(), [])
    _, crashed = run(times, set(), cuts, restart_at=restart)
    assert summary(crashed) == summary(whole)


@settings(max_examples=150, deadline=None)
@given(times=times_st)
def test_every_event_is_in_a_window_or_late_never_lost(times):
    w, closed = run(times, set(), [])
    in_windows = sum(p.events for p in closed) + sum(x.events for x in w.windows.values())
    late = sum(p.late_events for p in closed) + sum(x.late for x in w.windows.values())
    assert in_windows + late == len(times)
    # each closed window holds exactly the events of its range that were not late
    for p in closed:
        assert all(p.window_start_ms <= times[o] < p.window_end_ms for o in p.sketch.offsets)


def test_late_event_counted_in_the_open_window():
    w = PartitionWindows(0, 100, None, 10, OffsetSketch)
    closed = w.absorb(np.array([0, 1, 2]), np.array([5, 150, 40]), [], OffsetBatch([0, 1, 2]))
    assert [p.window_start_ms for p in closed] == [0]
    assert closed[0].sketch.offsets == [0]  # 40 arrived after [0,100) closed at watermark 140
    assert w.windows[100].late == 1


def test_malformed_messages_are_counted_in_the_window_open_when_they_arrived():
    w = PartitionWindows(0, 100, None, 0, OffsetSketch)
    closed = w.absorb(np.array([1, 3]), np.array([10, 120]),
                      [(0, "malformed"), (2, "malformed")], OffsetBatch([1, 3]))
    closed += w.absorb(np.array([], np.int64), np.array([], np.int64),
                       [(4, "missing_event_time")])
    assert w.windows[100].bad == {"missing_event_time": 1}
    closed += w.advance(1000)
    # offset 0 came before any event: it goes to the first window opened after it
    assert [(p.window_start_ms, p.bad) for p in closed] == [
        (0, {"malformed": 2}), (100, {"missing_event_time": 1})]
    assert w.next_offset == 5


def test_heartbeat_closes_idle_windows():
    w = PartitionWindows(0, 100, None, 50, OffsetSketch)
    assert w.absorb(np.array([0]), np.array([10]), [], OffsetBatch([0])) == []
    closed = w.advance(100)
    assert [(p.window_start_ms, p.sketch.offsets) for p in closed] == [(0, [0])]


def test_frame_round_trip():
    assert unframe(frame(b"{}", [b"a", b"", b"xyz"])) == (b"{}", [b"a", b"", b"xyz"])
