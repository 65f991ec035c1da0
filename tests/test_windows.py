"""Event-time windows of one partition: batch boundaries never change what a window holds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.dedup import DuplicateFilter
from monitor.stage1.windows import PartitionWindows, frame, unframe


class OffsetBatch:
    """A batch that only carries offsets (and optionally id hashes), for a sketch that
    records them."""

    def __init__(self, offsets, ids=None):
        self.offset = np.asarray(offsets, np.int64)
        self.event_id_hash = None if ids is None else np.asarray(ids, np.uint64)

    @property
    def n_events(self):
        return self.offset.size

    def take(self, idx):
        return OffsetBatch(self.offset[idx],
                           None if self.event_id_hash is None else self.event_id_hash[idx])


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


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64: small integer ids -> well-spread 64-bit hashes, as the decoder's are."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def new_filter():
    return DuplicateFilter(n_bits=1 << 16, n_hashes=7, generations=1000)


def run(times, bad_at, cuts, size=100, slide=None, lateness=20, restart_at=None, ids=None,
        sample_every=0):
    """Feed one partition's events in batches cut at ``cuts``; optionally serialize and
    restore the state at a cut and replay from an earlier offset (as after a crash). With
    ``ids`` (one per event) a duplicate filter runs; with ``sample_every``, events at
    offsets divisible by it are schema samples carrying the new field "f<offset % 3>"."""
    n = len(times)
    offsets = np.arange(n, dtype=np.int64)
    is_bad = np.zeros(n, bool)
    is_bad[list(bad_at)] = True
    hashes = None if ids is None else mix(np.asarray(ids, np.uint64))
    w = PartitionWindows(0, size, slide, lateness, OffsetSketch,
                         new_filter() if ids is not None else None)
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
        samples = [(int(x), (f"f{x % 3}",)) for x in o if sample_every and x % sample_every == 0]
        closed += w.absorb(o, t, bad, OffsetBatch(o, None if hashes is None else
                                                  hashes[sl][good]), samples)
        if restart_at is not None and i == restart_at:
            # crash: restore the state, then the consumer re-delivers from an older offset
            w = PartitionWindows.from_bytes(w.to_bytes(), OffsetSketch, OffsetSketch.from_bytes,
                                            new_filter() if ids is not None else None)
            edges = edges[: i + 1] + [max(0, lo - 3)] + [e for e in edges[i + 1:] if e > lo]
            edges = sorted(set(edges))
            restart_at = None
            i = edges.index(max(0, lo - 3))
            continue
        i += 1
    return w, closed


def summary(closed):
    return [(p.window_start_ms, sorted(p.sketch.offsets) if p.sketch else [], p.events,
             p.late_events, p.bad, p.counts) for p in closed]


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


@settings(max_examples=100, deadline=None)
@given(times=times_st, data=st.data())
def test_duplicates_and_samples_do_not_depend_on_batches_or_restarts(times, data):
    n = len(times)
    ids = data.draw(st.lists(st.integers(1, 30), min_size=n, max_size=n))
    cuts = data.draw(st.lists(st.integers(1, n), min_size=1, max_size=6))
    restart = data.draw(st.integers(0, len(set(cuts))))
    _, whole = run(times, set(), [], ids=ids, sample_every=4)
    _, crashed = run(times, set(), cuts, restart_at=restart, ids=ids, sample_every=4)
    assert summary(crashed) == summary(whole)


@settings(max_examples=100, deadline=None)
@given(times=times_st, data=st.data())
def test_a_repeated_id_is_a_duplicate_left_out_of_its_window(times, data):
    """A plain reference: an event whose id came before is a duplicate, counted in the
    window of the largest event time kept before it; the others go through as usual."""
    n = len(times)
    ids = data.draw(st.lists(st.integers(1, 30), min_size=n, max_size=n))
    w, closed = run(times, set(), [], ids=ids, lateness=10_000)
    seen, kept_max, want, kept = set(), None, {}, []
    for o, (t, i) in enumerate(zip(times, ids)):
        if i in seen:
            at = t if kept_max is None else kept_max
            want[at - at % 100] = want.get(at - at % 100, 0) + 1
        else:
            kept.append(o)
            kept_max = t if kept_max is None else max(kept_max, t)
        seen.add(i)
    closed += w.advance(10**9)
    got = {p.window_start_ms: p.counts["duplicates"] for p in closed if p.counts.get("duplicates")}
    assert got == want
    assert sorted(o for p in closed if p.sketch for o in p.sketch.offsets) == kept


def test_schema_samples_count_in_the_events_own_windows():
    w = PartitionWindows(0, 100, 50, 0, OffsetSketch)
    closed = w.absorb(np.array([0, 1, 2]), np.array([10, 60, 120]), [],
                      OffsetBatch([0, 1, 2]), [(1, ("new",)), (2, ())])
    closed += w.advance(10**6)
    got = {p.window_start_ms: p.counts for p in closed}
    # hopping windows of 100 every 50: t=60 is in [0,100) and [50,150); t=120 in [50,150)
    # and [100,200)
    assert got[0] == {"schema_sampled": 1, "schema_new:new": 1}
    assert got[50] == {"schema_sampled": 2, "schema_new:new": 1}
    assert got[100] == {"schema_sampled": 1}
