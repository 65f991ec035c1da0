"""The pending-label store: the same joins, expiries and counts as a plain dict, whatever the
batches, the table's growth or a restart from its bytes in between."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.pending import COUNTERS, PendingStore

MAX_DELAY = 50


class DictStore:
    """The reference: a dict of waiting entries, one row at a time."""

    def __init__(self, max_entries: int) -> None:
        self.wait: dict[int, tuple] = {}
        self.max_entries = max_entries
        self.c = dict.fromkeys(COUNTERS, 0)

    def add(self, is_label, key, time, score, value, cell):
        if key == 0:
            self.c["no_id"] += 1
            return None
        other = "P" if is_label else "L"
        e = self.wait.get(key)
        if e is not None and e[0] == other:
            del self.wait[key]
            self.c["joined"] += 1
            if is_label:
                return (e[1], e[2], e[3], e[4], value)
            return (time, score, value, cell, e[3])
        if e is not None:
            self.c["duplicate_labels" if is_label else "duplicate_predictions"] += 1
        elif len(self.wait) >= self.max_entries:
            self.c["full_labels" if is_label else "full_predictions"] += 1
        else:
            self.wait[key] = ("L" if is_label else "P", time, score, value, cell)
            self.c["labels" if is_label else "predictions"] += 1
        return None

    def expire(self, label_wm, pred_wm):
        out = []
        for k, e in list(self.wait.items()):
            if e[0] == "P" and e[1] + MAX_DELAY < label_wm:
                out.append((e[1], e[4]))
                self.c["expired"] += 1
                del self.wait[k]
            elif e[0] == "L" and e[1] < pred_wm:
                self.c["orphan_labels"] += 1
                del self.wait[k]
        return sorted(out)


def joined_rows(j):
    return [(int(t), float(s), int(p), int(c), int(y)) for t, s, p, c, y in
            zip(j["time"], j["score"], j["pred"], j["cell"], j["label"])]


op = st.tuples(st.sampled_from(["P", "L", "E", "R"]),
               st.lists(st.tuples(st.integers(0, 60), st.integers(0, 400)), max_size=30),
               st.integers(0, 500))


@settings(max_examples=120, deadline=None)
@given(st.lists(op, max_size=14), st.sampled_from([8, 40, 10_000]))
def test_matches_a_dict_whatever_the_batches_growth_and_restarts(ops, max_entries):
    store = PendingStore(MAX_DELAY, max_entries=max_entries, capacity=16)
    ref = DictStore(max_entries)
    for kind, rows, wm in ops:
        if kind == "R":  # a restart: the store comes back from its bytes
            b = store.to_bytes()
            store = PendingStore.from_bytes(b)
            assert store.to_bytes() == b
            continue
        if kind == "E":
            got = store.expire(label_watermark=wm, prediction_watermark=wm - 100)
            assert sorted(zip(got["time"].tolist(), got["cell"].tolist())) == ref.expire(
                wm, wm - 100)
            continue
        keys = np.array([k * 0x9E3779B97F4A7C15 % 2**64 if k % 7 else k for k, _ in rows],
                        np.uint64)  # some small raw keys too (0: no id), to crowd the slots
        times = np.array([t for _, t in rows], np.int64)
        scores = times / 400.0
        values = (times % 2).astype(np.int8)
        cells = (times % 5).astype(np.int32)
        if kind == "P":
            got = store.add_predictions(keys, times, scores, values, cells)
        else:
            got = store.add_labels(keys, times, values)
        want = [ref.add(kind == "L", int(k), int(t), s, int(v), int(c))
                for k, t, s, v, c in zip(keys, times, scores, values, cells)]
        idx = [i for i, w in enumerate(want) if w is not None]
        assert got["index"].tolist() == idx
        assert joined_rows(got) == [tuple(w) for w in want if w is not None]
    assert store.counts() == {**ref.c, "waiting": len(ref.wait)}
    assert len(store) <= max_entries


def test_bytes_depend_on_what_waits_not_on_arrival_order():
    keys = np.arange(1, 200, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    t = np.arange(199, dtype=np.int64)
    a, b = PendingStore(10, capacity=16), PendingStore(10, capacity=16)
    a.add_predictions(keys, t, t / 9.0, (t % 2).astype(np.int8), (t % 3).astype(np.int32))
    r = np.random.default_rng(1).permutation(199)
    b.add_predictions(keys[r], t[r], t[r] / 9.0, (t[r] % 2).astype(np.int8),
                      (t[r] % 3).astype(np.int32))
    assert a.to_bytes() == b.to_bytes()
    assert len(a.to_bytes()) < 199 * 30 + 300  # only the waiting entries travel


def test_full_store_refuses_and_counts_and_memory_follows_the_bound():
    s = PendingStore(10, max_entries=1000, capacity=16)
    keys = np.arange(1, 5001, dtype=np.uint64)
    s.add_predictions(keys, np.zeros(5000), np.zeros(5000), np.zeros(5000), np.zeros(5000))
    assert len(s) == 1000 and s.full_predictions == 4000 and s.predictions == 1000
    assert s.capacity == 2048 and s.nbytes == 2048 * 30  # 1000 / 0.7 -> the next power of 2
    s.add_labels(keys[:10], np.zeros(10), np.ones(10))
    assert s.joined == 10 and len(s) == 990


def test_a_label_joins_whichever_side_comes_first():
    s = PendingStore(100)
    j1 = s.add_labels(np.array([3], np.uint64), np.array([500]), np.array([1], np.int8))
    j2 = s.add_predictions(np.array([3], np.uint64), np.array([450]), np.array([0.7]),
                           np.array([1], np.int8), np.array([2], np.int32))
    assert len(j1["time"]) == 0 and joined_rows(j2) == [(450, 0.7, 1, 2, 1)]
    assert len(s) == 0 and s.orphan_labels == 0


def test_bad_arguments_say_so():
    with pytest.raises(ValueError):
        PendingStore(10, capacity=1000)
    with pytest.raises(ValueError):
        PendingStore.from_bytes(b"nope")
