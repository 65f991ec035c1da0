"""The duplicate filter: exact on true duplicates, false positives under the stated bound."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.dedup import DuplicateFilter


def exact(ids_per_window: list[np.ndarray], generations: int) -> list[np.ndarray]:
    """Reference: seen in this window or the previous ``generations - 1`` windows."""
    out, recent = [], []
    for ids in ids_per_window:
        seen = set().union(*recent[-(generations - 1):]) if generations > 1 else set()
        cur: set[int] = set()
        flags = []
        for x in ids.tolist():
            flags.append(x != 0 and (x in cur or x in seen))
            if x != 0:
                cur.add(x)
        out.append(np.array(flags, bool))
        recent.append(cur)
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=60), min_size=1, max_size=6),
       st.integers(1, 3), st.data())
def test_matches_exact_set_with_a_large_filter(windows, generations, data):
    ids = [np.array(w, np.uint64) * np.uint64(0x9E3779B97F4A7C15) for w in windows]
    ids = [np.where(np.array(w) == 0, 0, i).astype(np.uint64) for w, i in zip(windows, ids)]
    f = DuplicateFilter(n_bits=1 << 16, n_hashes=5, generations=generations)
    want = exact(ids, generations)
    for i, (batch, w) in enumerate(zip(ids, want)):
        if i:
            f.rotate()
        cut = data.draw(st.integers(0, batch.size))
        got = np.concatenate([f.update(batch[:cut]), f.update(batch[cut:])])
        assert got.tolist() == w.tolist()


def test_false_positive_rate_under_the_bound():
    rng = np.random.default_rng(1)
    f = DuplicateFilter(n_bits=1 << 14, n_hashes=4, generations=2)
    f.update(rng.integers(1, 2**63, 2500, dtype=np.uint64))
    f.rotate()
    f.update(rng.integers(1, 2**63, 2500, dtype=np.uint64))
    bound = f.false_positive_rate()
    probe = f.contains(rng.integers(1, 2**63, 200_000, dtype=np.uint64))
    measured = probe.mean()
    assert 0 < bound < 0.1
    assert measured <= bound * 1.2 + 3 * np.sqrt(bound / probe.size), (measured, bound)


def test_round_trip_and_fixed_memory():
    f = DuplicateFilter(n_bits=1 << 12, n_hashes=3, generations=3)
    f.update(np.arange(1, 500, dtype=np.uint64))
    g = DuplicateFilter.from_bytes(f.to_bytes())
    assert g.to_bytes() == f.to_bytes()
    assert g.update(np.array([7, 10_000], np.uint64)).tolist() == [True, False]
    size = len(f.to_bytes())
    f.update(np.arange(1, 100_000, dtype=np.uint64))
    assert len(f.to_bytes()) == size
