"""Performance from joined rows: every figure equals scikit-learn / fairlearn on the same rows
(AUC within the sketch's own stated bound), per cell and over all; merges bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.performance import PerformanceSketch, label_fairness
from tests.reference_performance import (FAIRNESS_ORACLES, PERFORMANCE_ORACLES, ece_numpy,
                                         rows_of)


def rows(n: int, seed: int, cells: int = 3, dirty: bool = True):
    """Labels that depend on a score with a per-cell skill; with ``dirty``, some NaN / inf /
    out-of-range scores, bad labels and missing predicted classes."""
    rng = np.random.default_rng(seed)
    cell = rng.integers(0, cells, n).astype(np.int32)
    skill = 0.5 + cell / (2.0 * cells)
    label = (rng.random(n) < 0.35).astype(np.int8)
    score = np.clip(np.where(label == 1, skill, 1 - skill) * rng.random(n)
                    + 0.3 * rng.random(n), 0.0, 1.0)
    pred = (score >= 0.45).astype(np.int8)
    if dirty and n:
        k = max(1, n // 50)
        score[rng.integers(0, n, k)] = np.nan
        score[rng.integers(0, n, k)] = np.inf
        score[rng.integers(0, n, k)] = 1.5
        label[rng.integers(0, n, k)] = -1
        label[rng.integers(0, n, k)] = 7
        pred[rng.integers(0, n, k)] = -1
    return cell, label, pred, score


def check_against_oracles(r, label, pred, score):
    for name, (kind, oracle) in PERFORMANCE_ORACLES.items():
        y, p, s = rows_of(kind, label, pred, score)
        want = oracle(y, p, s)
        if name == "auc":
            assert abs(r["auc"] - want) <= r["auc_error_bound"] + 1e-12, (r["auc"], want)
        elif math.isnan(want):
            assert math.isnan(r[name]), name
        else:
            assert r[name] == pytest.approx(want, rel=1e-12, abs=1e-15), name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_figure_equals_sklearn_overall_and_per_cell(seed):
    cell, label, pred, score = rows(4000, seed)
    s = PerformanceSketch.empty(n_cells=3, n_bins=1000, n_calibration_bins=10)
    s.update(cell, label, pred, score)
    check_against_oracles(s.result(), label, pred, score)
    for c in range(3):
        m = cell == c
        check_against_oracles(s.result([c]), label[m], pred[m], score[m])
    r = s.result([0, 2])
    m = cell != 1
    check_against_oracles(r, label[m], pred[m], score[m])


def test_counts_say_what_was_left_out():
    cell, label, pred, score = rows(3000, 4)
    r = PerformanceSketch.empty(3, 100).update(cell, label, pred, score).result()
    good = (label == 0) | (label == 1)
    with np.errstate(invalid="ignore"):
        ok_score = (score >= 0) & (score <= 1)
    assert r["labelled"] == good.sum() and r["bad_label"] == (~good).sum()
    assert r["positives"] == (label == 1).sum()
    assert r["no_prediction"] == (good & (pred != 0) & (pred != 1)).sum()
    assert r["invalid_score"] == (good & ~ok_score).sum()
    assert r["scored"] == (good & ok_score).sum()
    assert r["tp"] + r["fp"] + r["tn"] + r["fn"] == (good & ((pred == 0) | (pred == 1))).sum()


@pytest.mark.parametrize("n_cal", [5, 10, 15])
def test_ece_and_reliability_diagram_equal_calibration_curve(n_cal):
    cell, label, pred, score = rows(5000, 5)
    score[:20] = [0.0, 1.0, 0.2, 0.4, 0.6, 0.8, 0.1, 0.3, 0.5, 0.7] * 2  # on the edges
    r = PerformanceSketch.empty(3, 50, n_cal).update(cell, label, pred, score).result()
    y, _, s = rows_of("score", label, pred, score)
    ece, n, prob_pred, prob_true = ece_numpy(y, s, n_cal)
    assert r["ece"] == pytest.approx(ece, rel=1e-12)
    rel = [b for b in r["reliability"] if b["n"] > 0]
    assert [b["n"] for b in r["reliability"]] == n.tolist()
    np.testing.assert_allclose([b["mean_score"] for b in rel], prob_pred, rtol=1e-12)
    np.testing.assert_allclose([b["positive_rate"] for b in rel], prob_true, rtol=1e-12)


@pytest.mark.parametrize("n_bins,spread", [(1000, 1.0), (20, 1.0), (5, 0.3), (1, 1.0)])
def test_auc_within_its_stated_bound_and_the_bound_is_tight_enough(n_bins, spread):
    """Coarse bins and crowded scores make the bound large; it must hold all the same, and on
    the default grid with spread scores it is below 1e-3."""
    rng = np.random.default_rng(n_bins)
    y = (rng.random(3000) < 0.4).astype(np.int8)
    s = np.clip(0.5 + spread * (rng.normal(size=3000) * 0.2 + 0.15 * y), 0, 1)
    s[:300] = np.round(s[:300], 2)  # ties across the classes too
    r = PerformanceSketch.empty(1, n_bins).update(np.zeros(3000), y, y, s).result()
    from sklearn.metrics import roc_auc_score

    exact = roc_auc_score(y, s)
    assert abs(r["auc"] - exact) <= r["auc_error_bound"] + 1e-12
    if n_bins == 1000:
        assert r["auc_error_bound"] < 1e-3
    if n_bins == 1:
        assert r["auc"] == 0.5 and r["auc_error_bound"] == 0.5


def test_label_fairness_equals_fairlearn():
    rng = np.random.default_rng(7)
    n = 6000
    group = rng.integers(0, 3, n)
    y = (rng.random(n) < 0.4).astype(np.int8)
    hit = np.array([0.8, 0.65, 0.72])[group]
    false = np.array([0.1, 0.2, 0.15])[group]
    pred = np.where(y == 1, rng.random(n) < hit, rng.random(n) < false).astype(np.int8)
    names = np.array(["a", "b", "c"])[group]
    s = PerformanceSketch.empty(6).update(group * 2 + (rng.random(n) < 0.5), y, pred)
    f = label_fairness(s, {"a": [0, 1], "b": [2, 3], "c": [4, 5]}, min_group=100)
    for name, oracle in FAIRNESS_ORACLES.items():
        assert f[name] == pytest.approx(oracle(y, pred, sensitive_features=names), rel=1e-12)
    assert f["tpr"]["low_group"] == "b" and f["tpr"]["high_group"] == "a"
    assert f["tpr"]["p_value"] < 1e-6 and f["excluded"] == []
    lo, hi = f["tpr"]["ratio_ci"]
    assert lo < f["tpr"]["ratio"] < hi


def test_label_fairness_leaves_out_groups_without_both_classes_or_too_small():
    s = PerformanceSketch.empty(3).update([0, 0, 1, 1, 2], [1, 0, 1, 1, 1], [1, 0, 1, 0, 1])
    f = label_fairness(s, {"a": [0], "b": [1], "c": [2]})
    assert f["excluded"] == ["b", "c"] and "equalized_odds_difference" not in f
    assert label_fairness(s, {"a": [0]}, min_group=3)["excluded"] == ["a"]


def test_bad_data_is_counted_never_raised():
    s = PerformanceSketch.empty(2, 10, 3)
    r = s.update([], [], [], []).result()
    assert r["labelled"] == 0 and math.isnan(r["accuracy"]) and math.isnan(r["auc"])
    assert math.isnan(r["log_loss"]) and math.isnan(r["ece"])
    s.update(np.array([1]), np.array([1]), np.array([1]), np.array([np.float32(0.25)]))
    r = s.result()
    assert r["accuracy"] == 1.0 and r["brier"] == 0.5625 and math.isnan(r["auc"])
    s.update([0, 0], [1, 0], [1, 0], [np.nan, -np.inf])
    assert s.result([0])["invalid_score"] == 2
    with pytest.raises(ValueError):
        s.update([2], [1], [1], [0.5])  # a cell out of range is a caller's bug


def test_extreme_scores_are_clipped_like_sklearn_and_sum_exactly():
    y = np.array([1, 0, 1, 0, 1, 0], np.int8)
    s = np.array([0.0, 1.0, 5e-324, 1 - 2**-53, 1.0, 0.0])
    r = PerformanceSketch.empty().update(np.zeros(6), y, y, s).result()
    check_against_oracles(r, y, y, s)


def split_merge(cell, label, pred, score, cuts, order):
    parts = []
    edges = [0, *sorted({c for c in cuts if c < len(cell)}), len(cell)]
    for a, b in zip(edges, edges[1:]):
        parts.append(PerformanceSketch.empty(3, 64, 7).update(cell[a:b], label[a:b], pred[a:b],
                                                                 score[a:b]))
    out = PerformanceSketch.empty(3, 64, 7)
    for i in (order if len(order) == len(parts) else range(len(parts))):
        out = out.merge(parts[i]) if i % 2 else parts[i].merge(out)
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 400), st.lists(st.integers(0, 400), max_size=4),
       st.randoms(use_true_random=False))
def test_halves_merged_in_any_order_equal_the_whole_bit_for_bit(seed, n, cuts, rnd):
    cell, label, pred, score = rows(n, seed)
    whole = PerformanceSketch.empty(3, 64, 7).update(cell, label, pred, score)
    k = len({c for c in cuts if c < n}) + 1
    order = list(range(k))
    rnd.shuffle(order)
    merged = split_merge(cell, label, pred, score, cuts, order)
    assert merged.to_bytes() == whole.to_bytes()
    back = PerformanceSketch.from_bytes(whole.to_bytes())
    assert back.to_bytes() == whole.to_bytes()
    assert repr(back.result()) == repr(whole.result()) == repr(merged.result())


def test_merge_refuses_other_shapes():
    with pytest.raises(ValueError):
        PerformanceSketch.empty(2).merge(PerformanceSketch.empty(3))


GOLDEN = __import__("pathlib").Path(__file__).parent / "golden"


def golden_sketches() -> dict[str, bytes]:
    """A small performance sketch and pending store of fixed input (see tests/golden)."""
    from kernels.pending import PendingStore

    cell, label, pred, score = rows(300, 42, cells=2)
    perf = PerformanceSketch.empty(2, 16, 4).update(cell, label, pred, score)
    store = PendingStore(1000)
    keys = np.arange(1, 41, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    store.add_predictions(keys[:30], np.arange(30), score[:30], pred[:30], cell[:30])
    store.add_labels(keys[20:], np.arange(20, 40) + 500, label[20:40])
    return {"performance_v1.bin": perf.to_bytes(), "pending_v1.bin": store.to_bytes()}


def test_golden_bytes_of_the_performance_sketch_and_the_pending_store():
    from kernels.pending import PendingStore

    for name, data in golden_sketches().items():
        path = GOLDEN / name
        if not path.exists():  # pragma: no cover - written once, then committed
            pytest.fail(f"{path} missing: see tests/golden/README.md")
        assert data == path.read_bytes(), f"{name}: the byte format changed"
    back = PendingStore.from_bytes((GOLDEN / "pending_v1.bin").read_bytes())
    assert len(back) == 30 and back.joined == 10 and back.labels == 10
    perf = PerformanceSketch.from_bytes((GOLDEN / "performance_v1.bin").read_bytes())
    assert perf.n_cells == 2 and perf.n_bins == 16 and perf.result()["labelled"] > 250


def write_golden() -> None:  # pragma: no cover - see tests/golden/README.md
    for name, data in golden_sketches().items():
        (GOLDEN / name).write_bytes(data)
