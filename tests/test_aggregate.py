"""Stage 2's window logic over plain dicts: complete windows only, in order, once."""

from __future__ import annotations

from monitor.stage2.aggregate import Tables, WindowAggregator
from monitor.stage1.partials import PartialMessage


def partial(p, w, wm, events, n=2):
    return PartialMessage("partial", "m", p, n, wm, 0, w, w + 10, events=events, sketch=b"s")


def progress(p, wm, n=2):
    return PartialMessage("progress", "m", p, n, wm, 0)


def run(msgs):
    agg = WindowAggregator(10, None, lambda blobs: len(blobs), Tables.in_memory())
    out = []
    for m in msgs:
        out += [(c.start_ms, c.events, c.partitions) for c in agg.on_message(m)]
    return out, agg


def test_a_window_waits_for_every_partition():
    out, _ = run([partial(0, 0, 25, 3), partial(0, 10, 25, 4), progress(0, 25),
                  partial(1, 0, 12, 5), progress(1, 12)])
    assert out == [(0, 8, [0, 1])]


def test_several_windows_closed_in_one_step_keep_their_later_partials():
    # partition 1 closes windows 0 and 10 at once: its first partial already carries a
    # watermark past window 10, whose partial comes right after it
    out, _ = run([partial(0, 0, 30, 1), partial(0, 10, 30, 1), partial(0, 20, 30, 1),
                  progress(0, 30), partial(1, 0, 30, 2), partial(1, 10, 30, 2),
                  partial(1, 20, 30, 2), progress(1, 30)])
    assert out == [(0, 3, [0, 1]), (10, 3, [0, 1]), (20, 3, [0, 1])]


def test_empty_windows_close_as_empty_and_late_partials_are_counted():
    out, agg = run([partial(0, 0, 5, 1), progress(0, 45), progress(1, 45),
                    partial(1, 0, 46, 9)])
    assert out == [(0, 1, [0]), (10, 0, []), (20, 0, []), (30, 0, [])]
    assert agg.t.meta["late_partials"] == 1


def test_a_resent_partial_replaces_itself():
    out, _ = run([partial(0, 0, 5, 1), partial(0, 0, 5, 1), progress(0, 10), progress(1, 10)])
    assert out == [(0, 1, [0])]


def test_recent_window_volumes_are_kept_for_the_baseline():
    agg = WindowAggregator(10, None, lambda blobs: len(blobs), Tables.in_memory(), history=2)
    out = []
    for w, events in ((0, 5), (10, 0), (20, 7), (30, 9)):
        if events:
            out += agg.on_message(partial(0, w, w, events, n=1))
        out += agg.on_message(progress(0, w + 10, n=1))
    # the empty window is not part of the baseline; the history keeps the last two
    assert [(c.start_ms, c.events, c.recent_events) for c in out] == [
        (0, 5, []), (10, 0, [5]), (20, 7, [5]), (30, 9, [5, 7])]
    assert agg.t.meta["recent_events"] == [7, 9]


def test_counts_of_partials_are_summed():
    agg = WindowAggregator(10, None, lambda blobs: len(blobs), Tables.in_memory())
    a = PartialMessage("partial", "m", 0, 2, 10, 0, 0, 10, events=1, sketch=b"s",
                       counts={"duplicates": 2, "schema_sampled": 1})
    b = PartialMessage("partial", "m", 1, 2, 10, 0, 0, 10, events=1, sketch=b"s",
                       counts={"duplicates": 3})
    out = agg.on_message(a) + agg.on_message(b) + agg.on_message(progress(0, 10)) + \
        agg.on_message(progress(1, 10))
    assert [c.counts for c in out] == [{"duplicates": 5, "schema_sampled": 1}]
    assert PartialMessage.from_bytes(a.to_bytes()) == a
