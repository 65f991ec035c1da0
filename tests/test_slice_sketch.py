"""The per-slice sketch (monitor/stage1/slices.py): counts equal numpy's on the slice rows,
batch boundaries and merge order do not matter (the same bytes), bytes round-trip, and it
rides stage 1's windows (state restore included), the partials and stage 2's merge
unchanged; a sketch without slices is refused with a message, not misread."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels.batch import (CAT_MISSING, CAT_NULL, CAT_UNSEEN, MISSING, NULL, TYPE_ERROR,
                           VALID, ColumnBatch)
from kernels.window import ReferenceProfile, WindowSketch
from monitor.stage1.partials import PartialMessage
from monitor.stage1.slices import (SliceLayout, SliceSketch, SlicedWindowSketch, sliced_parts,
                                   without_slices)
from monitor.stage1.windows import PartitionWindows
from monitor.stage2.aggregate import Tables, WindowAggregator

RNG = np.random.default_rng(0)
PROFILE = ReferenceProfile.build(
    {"x": RNG.normal(size=5000), "y": RNG.exponential(size=5000)},
    {"k": RNG.choice(np.array(["a", "b", "c", "d"], object), 5000, p=[.4, .3, .2, .1]),
     "j": RNG.choice(np.array(["p", "q", "r"], object), 5000)}, n_bins=100)
LAYOUT = SliceLayout.build(PROFILE, ("k", "j"), top_k=2, bins=10)


def batch(n, seed, t0=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(2, n))
    x[0, r.random(n) < 0.05] = np.nan
    x[1, r.random(n) < 0.02] = np.inf
    state = r.choice([VALID, MISSING, NULL, TYPE_ERROR], (2, n), p=[.9, .04, .03, .03])
    cat = r.choice([0, 1, 2, 3, CAT_MISSING, CAT_NULL, CAT_UNSEEN], (2, n)).astype(np.int32)
    return ColumnBatch(
        numeric=np.ascontiguousarray(x), numeric_state=state.astype(np.int8), categorical=cat,
        unseen_hash=np.where(cat == CAT_UNSEEN, 7, 0).astype(np.uint64),
        score=np.full(n, np.nan), prediction=np.full(n, -1, np.int8),
        label=np.full(n, -1, np.int8), group=np.full(n, -1, np.int32),
        event_time_ms=t0 + np.sort(r.integers(0, 3000, n)), offset=np.arange(n))


def oracle(b: ColumnBatch, lay: SliceLayout = LAYOUT) -> dict:
    """Plain numpy, slice by slice: events, numeric bins (the profile's fine bins regrouped),
    categorical bins, quality."""
    S, B = lay.n_slices, lay.bins
    out = {"events": np.zeros(S, int), "numeric": np.zeros((S, 2, B), int),
           "categorical": np.zeros((S, 2, B), int), "quality": np.zeros((S, 4, 4), int)}
    fine_n = PROFILE.edges.shape[1] - 1
    for k, row in enumerate(lay.key_rows):
        m = lay.per_key[k]
        code = b.categorical[row]
        for s in range(m):
            sel = (code == s) if s < m - 1 else ~((code >= 0) & (code < m - 1))
            g = lay.offset(k) + s
            out["events"][g] += sel.sum()
            for f in range(2):
                v, stt = b.numeric[f][sel], b.numeric_state[f][sel]
                ok = (stt == VALID) & np.isfinite(v)
                fine = np.searchsorted(PROFILE.edges[f], v[ok], "right")
                out["numeric"][g, f] += np.bincount(
                    np.clip((fine - 1) * B // fine_n, 0, B - 1), minlength=B)
                out["quality"][g, f] += [(stt == MISSING).sum(), (stt == NULL).sum(),
                                         (stt == TYPE_ERROR).sum(),
                                         ((stt == VALID) & ~np.isfinite(v)).sum()]
            for c in range(2):
                v = b.categorical[c][sel]
                good = v[(v >= 0) | (v == CAT_UNSEEN)]
                out["categorical"][g, c] += np.bincount(
                    np.where(good == CAT_UNSEEN, B - 1, np.minimum(good, B - 1)), minlength=B)
                out["quality"][g, 2 + c] += [(v == -1).sum(), (v == -2).sum(), (v == -3).sum(),
                                             (v == CAT_UNSEEN).sum()]
    return out


@pytest.mark.parametrize("bins", [10, 7, 3])  # 7: the fine grid's 100 bins do not divide
def test_counts_equal_numpy_on_the_slice_rows(bins):
    b = batch(4000, 1)
    lay = SliceLayout.build(PROFILE, ("k", "j"), top_k=2, bins=bins)
    s = SliceSketch.empty(lay).update(b)
    want = oracle(b, lay)
    for k, v in want.items():
        assert (getattr(s, k) == v).all(), k
    assert LAYOUT.names[:3] == ["k=a", "k=b", "k=other"] and LAYOUT.names[5] == "j=other"
    assert s.events[:3].sum() == s.events[3:].sum() == 4000  # each key: every event once


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 499), max_size=6, unique=True), st.randoms())
def test_any_split_and_merge_order_give_the_same_bytes(cuts, rnd):
    b = batch(500, 2)
    whole = SliceSketch.empty(LAYOUT).update(b).to_bytes()
    parts = [SliceSketch.empty(LAYOUT).update(b.take(idx))
             for idx in np.split(np.arange(500), sorted(cuts))]
    rnd.shuffle(parts)
    merged = SliceSketch.empty(LAYOUT)
    for p in parts:
        merged = merged.merge(p)
    assert merged.to_bytes() == whole
    assert SliceSketch.from_bytes(whole, LAYOUT).to_bytes() == whole


def test_rides_windows_state_partials_and_the_stage2_merge():
    """Two partitions, a state restore in between, partials through bytes, stage 2's merge:
    the merged slice counts are the counts of all events."""
    parts = sliced_parts(lambda: WindowSketch.empty(PROFILE),
                         lambda b: WindowSketch.from_bytes(b, PROFILE), LAYOUT)
    merged = []
    agg = WindowAggregator(10_000, None, lambda blobs: merged.append(
        [parts["load_sketch"](x) for x in blobs]) or None, Tables.in_memory())
    batches = [batch(1500, 10 + p) for p in range(2)]
    for p, b in enumerate(batches):
        w = PartitionWindows(p, 10_000, None, 0, parts["new_sketch"])
        half = b.take(np.arange(700))
        w.absorb(half.offset, half.event_time_ms, [], half)
        w = PartitionWindows.from_bytes(w.to_bytes(), parts["new_sketch"],
                                        parts["load_sketch"])
        rest = b.take(np.arange(700, 1500))
        w.absorb(rest.offset, rest.event_time_ms, [], rest)
        for c in w.advance(20_000):
            agg.on_message(PartialMessage("partial", "m", p, 2, c.watermark_ms, c.next_offset,
                                          c.window_start_ms, c.window_end_ms, c.events, 0, {},
                                          "", c.sketch.to_bytes()))
        agg.on_message(PartialMessage("progress", "m", p, 2, 20_000, 1500))
    (sk0, sk1), = merged
    total = sk0.merge(sk1)
    assert isinstance(total, SlicedWindowSketch) and total.n_events == 3000
    want = SliceSketch.empty(LAYOUT).update(batches[0]).update(batches[1])
    assert total.slices.to_bytes() == want.to_bytes()


def test_config_changes_across_a_restart_load_instead_of_crashing():
    """Stored bytes of a config without slices load with empty slice counts (the window
    counts its slices from then on); sliced bytes of another layout too; a config without
    slices loads sliced bytes as the plain sketch they carry."""
    b = batch(300, 3)
    plain_sk = WindowSketch.empty(PROFILE).update(b)
    base = lambda x: WindowSketch.from_bytes(x, PROFILE)  # noqa: E731
    got = SlicedWindowSketch.load(plain_sk.to_bytes(), base, LAYOUT)
    assert got.n_events == 300 and int(got.slices.events.sum()) == 0
    assert WindowSketch.to_bytes(got) == plain_sk.to_bytes()
    sliced = SlicedWindowSketch(WindowSketch.empty(PROFILE), SliceSketch.empty(LAYOUT)).update(b)
    other = SliceLayout.build(PROFILE, ("k",), top_k=2, bins=10)
    moved = SlicedWindowSketch.load(sliced.to_bytes(), base, other)
    assert moved.n_events == 300 and moved.slices.events.shape == (3,) \
        and int(moved.slices.events.sum()) == 0
    assert without_slices(base)(sliced.to_bytes()).to_bytes() == plain_sk.to_bytes()
    assert without_slices(base)(plain_sk.to_bytes()).to_bytes() == plain_sk.to_bytes()
    with pytest.raises(ValueError, match="do not fit"):
        SliceSketch.from_bytes(SliceSketch.empty(LAYOUT).to_bytes(), other)


def test_the_score_is_the_last_numeric_row_on_its_own_grid():
    """With a score in the profile, slices count it like a numeric feature on the score's
    grid (absent = NaN counts as missing, ±inf as non-finite)."""
    rng = np.random.default_rng(5)
    prof = ReferenceProfile.build({"x": rng.normal(size=3000)},
                                  {"k": rng.choice(np.array(["a", "b"], object), 3000)},
                                  score=rng.beta(2, 5, 3000), n_bins=50)
    lay = SliceLayout.build(prof, ("k",), top_k=1, bins=4)
    assert lay.numeric == ("x", "score")
    n = 2000
    b = batch(n, 4)
    score = rng.random(n)
    score[:50], score[50:60] = np.nan, np.inf
    b = ColumnBatch(**{**b.__dict__, "numeric": b.numeric[:1].copy(),
                       "numeric_state": b.numeric_state[:1].copy(),
                       "categorical": b.categorical[:1].copy(),
                       "unseen_hash": b.unseen_hash[:1].copy(), "score": score})
    s = SliceSketch.empty(lay).update(b)
    code = b.categorical[0]
    for sl, sel in enumerate([code == 0, code != 0]):
        v = score[sel]
        fine = np.searchsorted(prof.score_edges[0], v[np.isfinite(v)], "right")
        want = np.bincount(np.clip((fine - 1) * 4 // 50, 0, 3), minlength=4)
        assert (s.numeric[sl, 1] == want).all()
        assert s.quality[sl, 1].tolist() == [int(np.isnan(v).sum()), 0, 0,
                                             int(np.isinf(v).sum())]
