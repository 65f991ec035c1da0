"""The histogram a report carries equals a plain numpy count of the raw window values."""

from __future__ import annotations

import numpy as np

from kernels.window import ReferenceProfile, WindowSketch, reference_batch
from monitor.stage2.histograms import UNSEEN, histograms


def _profile_and_window(rng):
    ref_x = rng.gamma(2.0, 3.0, 20_000)
    ref_c = rng.choice(["a", "b", "c"], 20_000, p=[0.5, 0.3, 0.2])
    p = ReferenceProfile.build(numeric={"x": ref_x}, categorical={"c": ref_c})
    win_x = np.concatenate([rng.gamma(2.0, 3.5, 3000), [-5.0, 1e9]])  # under- and overflow
    win_c = np.array([*rng.choice(["a", "b", "c"], 3000), "zz", "zz"], dtype=object)
    w = WindowSketch.empty(p).update(reference_batch(p, {"x": win_x}, {"c": win_c}, None,
                                                     None, None, None))
    return p, w, ref_x, win_x, ref_c, win_c


def test_numeric_histogram_counts_the_raw_values_on_its_edges():
    p, w, ref_x, win_x, _, _ = _profile_and_window(np.random.default_rng(3))
    h = histograms(p, w)["x"]
    inner = np.asarray(h["edges"][1:-1])
    oracle = np.bincount(np.searchsorted(inner, win_x, side="right"), minlength=20)
    assert h["window"] == oracle.tolist()
    ref_oracle = np.bincount(np.searchsorted(inner, ref_x, side="right"), minlength=20)
    assert h["reference"] == ref_oracle.tolist()
    assert sum(h["window"]) == win_x.size


def test_categorical_histogram_counts_each_category_and_the_unseen():
    p, w, _, _, ref_c, win_c = _profile_and_window(np.random.default_rng(4))
    h = histograms(p, w)["c"]
    assert h["categories"][-1] == UNSEEN
    for i, cat in enumerate(h["categories"][:-1]):
        assert h["window"][i] == int((win_c == cat).sum())
        assert h["reference"][i] == int((ref_c == cat).sum())
    assert h["window"][-1] == 2
