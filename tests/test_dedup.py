"""The duplicate filter: exact on true duplicates, false positives under the stated bound."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.dedup import DuplicateFilter


def exact(ids: np.ndarray, windows: np.ndarray, generations: int) -> list[bool]:
    """Reference with true sets: slot ``window % generations`` holds that window's ids and is
    cleared when a newer window reaches it; an id is a duplicate if any slot holds it."""
    held = [None] * generations
    sets: list[set] = [set() for _ in range(generations)]
    out = []
    for x, w in zip(ids.tolist(), windows.tolist()):
        if x == 0:
            out.append(False)
            continue
        g = w % generations
        if held[g] is None or held[g] < w:
            held[g], sets[g] = w, set()
        seen = any(x in s for s in sets)
        out.append(seen)
        if not seen and held[g] == w:
            sets[g].add(x)
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 8)), max_size=200),
       st.integers(1, 3), st.lists(st.integers(0, 200), max_size=5))
def test_matches_exact_sets_whatever_the_batches(events, generations, cuts):
    ids = np.array([i for i, _ in events], np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    windows = np.array([w for _, w in events], np.int64)
    want = exact(ids, windows, generations)
    f = DuplicateFilter(n_bits=1 << 16, n_hashes=5, generations=generations)
    edges = [0, *sorted(c for c in cuts if c < len(events)), len(events)]
    got = np.concatenate([f.update(ids[a:b], windows[a:b]) for a, b in zip(edges, edges[1:])])
    assert got.tolist() == want


def test_remembers_the_last_windows_only():
    f = DuplicateFilter(n_bits=1 << 12, n_hashes=3, generations=2)
    one = np.array([5], np.uint64)
    assert f.update(one, np.array([10])).tolist() == [False]
    assert f.update(one, np.array([11])).tolist() == [True]   # the window after
    assert f.update(one, np.array([12])).tolist() == [False]  # window 10 was forgotten


def test_false_positive_rate_under_the_bound():
    rng = np.random.default_rng(1)
    f = DuplicateFilter(n_bits=1 << 14, n_hashes=4, generations=2)
    f.update(rng.integers(1, 2**63, 2500, dtype=np.uint64), np.zeros(2500, np.int64))
    f.update(rng.integers(1, 2**63, 2500, dtype=np.uint64), np.ones(2500, np.int64))
    bound = f.false_positive_rate()
    probe = f.contains(rng.integers(1, 2**63, 200_000, dtype=np.uint64))
    measured = probe.mean()
    assert 0 < bound < 0.1
    assert measured <= bound * 1.2 + 3 * np.sqrt(bound / probe.size), (measured, bound)


def test_round_trip_and_fixed_memory():
    f = DuplicateFilter(n_bits=1 << 12, n_hashes=3, generations=3)
    f.update(np.arange(1, 500, dtype=np.uint64), np.zeros(499, np.int64))
    g = DuplicateFilter.from_bytes(f.to_bytes())
    assert g.to_bytes() == f.to_bytes()
    assert g.update(np.array([7, 10_000], np.uint64), np.zeros(2, np.int64)).tolist() == [
        True, False]
    size = len(f.to_bytes())
    f.update(np.arange(1, 100_000, dtype=np.uint64), np.ones(99_999, np.int64))
    assert len(f.to_bytes()) == size
