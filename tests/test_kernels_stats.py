"""Every statistic against its oracle (tests/reference.py), on many kinds of data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from kernels import ReferenceProfile, WindowSketch, evaluate
from kernels.categorical_stats import categorical_reference, categorical_stats, chi2_test
from kernels.numeric_stats import numeric_stats
from kernels.window import reference_batch
from tests.reference import (
    CATEGORICAL_ORACLES, NUMERIC_ORACLES, CategoricalCase, NumericCase, chi2_scipy, js_distance,
    js_scipy, ks, numpy_bins, psi, psi_numpy,
)
from tests.reference import finite as ref_finite

DISTS = {
    "normal": lambda r, n: r.normal(0, 1, n),
    "shifted": lambda r, n: r.normal(0.3, 1, n),
    "scaled": lambda r, n: r.normal(0, 2.5, n),
    "lognormal": lambda r, n: r.lognormal(1, 0.9, n),
    "cauchy": lambda r, n: r.standard_cauchy(n),
    "discrete": lambda r, n: r.integers(0, 7, n).astype(float),
    "offset": lambda r, n: 1e9 + r.normal(0, 1e-3, n),
    "float32": lambda r, n: r.normal(0, 1, n).astype(np.float32).astype(float),
}


def sketch_of(values: np.ndarray, ref: np.ndarray, n_bins: int = 1000):
    p = ReferenceProfile.build(numeric={"x": ref}, n_bins=n_bins)
    w = WindowSketch.empty(p).update(reference_batch(p, {"x": values}, {}, None, None, None,
                                                     None))
    return p, w


_CASES: dict = {}


def numeric_case(ref_kind: str, win_kind: str) -> NumericCase:
    """A window of ``win_kind`` against a reference of ``ref_kind`` on a 200-bin grid, with
    the kernel's figures: built once per pair, shared by every row of NUMERIC_ORACLES."""
    if (ref_kind, win_kind) not in _CASES:
        rng = np.random.default_rng(hash((ref_kind, win_kind)) % 2**32)
        ref, win = DISTS[ref_kind](rng, 20_000), DISTS[win_kind](rng, 5_000)
        p, w = sketch_of(win, ref, n_bins=200)
        cw, cr, e = w.numeric.counts[0], p.reference.numeric.counts[0], p.edges[0]
        assert (cw == numpy_bins(win, e)).all() and (cr == numpy_bins(ref, e)).all()
        s = {k: float(v[0]) for k, v in numeric_stats(cw[None], cr[None], e[None]).items()}
        _CASES[ref_kind, win_kind] = NumericCase(ref_finite(win), ref_finite(ref), e, 200, s)
    return _CASES[ref_kind, win_kind]


@pytest.mark.parametrize("ref_kind", ["normal", "lognormal", "cauchy", "offset"])
@pytest.mark.parametrize("win_kind", list(DISTS))
@pytest.mark.parametrize("statistic", list(NUMERIC_ORACLES))
def test_numeric_statistic_equals_its_oracle(statistic, ref_kind, win_kind):
    o, case = NUMERIC_ORACLES[statistic], numeric_case(ref_kind, win_kind)
    if not o.applies(case):
        return  # e.g. AD's p-value beyond scipy's table: the ad_p_tail row holds it
    assert o.kernel(case) == pytest.approx(o.oracle(case), rel=o.rel, abs=o.abs)


def test_ks_upper_bound_holds_against_scipy_on_every_pair():
    for ref_kind in ("normal", "lognormal", "cauchy", "offset"):
        for win_kind in DISTS:
            c = numeric_case(ref_kind, win_kind)
            d_exact = stats.ks_2samp(c.win, c.ref).statistic
            assert c.s["ks"] <= d_exact + 1e-12 <= c.s["d_upper"] + 2e-12
            assert c.s["d_upper"] - c.s["ks"] <= c.s["max_bin_mass"] + 1e-12


def test_ad_p_value_keeps_resolution_below_scipy_table():
    """scipy floors the k-sample AD p at 0.001; the kernel continues down the asymptotic
    tail, so a strong shift has p far below any false-alarm budget (Bonferroni over 100
    tests at 0.01 is 1e-4)."""
    c = numeric_case("normal", "shifted")
    assert c.s["ad_p"] < 1e-6
    assert NUMERIC_ORACLES["ad_p_tail"].kernel(c) > 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=2, max_size=30),
       st.lists(st.integers(0, 400), min_size=2, max_size=30))
def test_categorical_statistic_equals_its_oracle(a, b):
    k = min(len(a), len(b))
    cw, cr = np.array(a[:k], np.int64), np.array(b[:k], np.int64)
    if cw.sum() == 0 or cr.sum() == 0:
        return
    case = CategoricalCase(cw, cr, categorical_stats(cw, categorical_reference(cr)))
    for name, o in CATEGORICAL_ORACLES.items():
        if o.applies(case):
            assert o.kernel(case) == pytest.approx(o.oracle(case), rel=o.rel, abs=o.abs), name


@pytest.mark.parametrize("kind", ["normal", "shifted", "scaled", "lognormal", "cauchy"])
def test_ks_within_the_documented_bound_of_scipy(kind):
    """D from the sketch vs scipy's exact D on the raw values: within the largest bin mass
    of either sample (reported as detail["error_bound"]); 0.001 on the default grid."""
    rng = np.random.default_rng(7)
    ref = rng.normal(0, 1, 100_000)
    win = DISTS[kind](rng, 50_000)
    p, w = sketch_of(win, ref)
    r = {x.check: x for x in evaluate(p, w, min_events=10)}["ks"]
    exact = stats.ks_2samp(win, ref, method="asymp")
    bound = r.detail["error_bound"]
    assert abs(r.statistic - exact.statistic) <= bound
    if kind in ("normal",):  # same continuous distribution: bin masses ~ 1/1000
        assert bound < 0.002 and abs(r.statistic - exact.statistic) <= 0.001
    # p-value: Kolmogorov's asymptotic law at the sketch's D (kernels.numeric_stats.ks_pvalue)
    en = 100_000 * 50_000 / 150_000
    assert r.p_value == pytest.approx(stats.kstwobign.sf(r.statistic * np.sqrt(en)),
                                      rel=1e-9, abs=1e-300)
    # and close to scipy's exact-law version where p is not vanishingly small
    if exact.pvalue > 1e-6:
        assert r.p_value == pytest.approx(stats.kstwo.sf(r.statistic, round(en)), rel=0.05)


def test_ks_continuous_default_grid_within_0_001():
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.05, 0.3, 1.0):
        ref, win = rng.normal(0, 1, 200_000), rng.normal(shift, 1, 100_000)
        p, w = sketch_of(win, ref)
        d, _, d_upper = ks(w.numeric.counts[0], p.reference.numeric.counts[0])
        exact = stats.ks_2samp(win, ref).statistic
        assert d <= exact + 1e-12 <= d_upper + 2e-12
        assert abs(d - stats.ks_2samp(win, ref).statistic) <= 0.001 + 1e-12


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["a", "b", "c", "d", "zz"]), min_size=5, max_size=300),
       st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=5, max_size=300))
def test_categorical_statistics_equal_scipy(window, reference):
    p = ReferenceProfile.build(numeric={}, categorical={"c": np.array(reference, object)})
    batch = reference_batch(p, {}, {"c": np.array(window, object)}, None, None, None, None)
    w = WindowSketch.empty(p).update(batch)
    k = len(p.categories["c"])
    cw = np.append(w.categorical.counts[0, :k], w.categorical.unseen[0])
    cr = np.append(p.reference.categorical.counts[0, :k], p.reference.categorical.unseen[0])
    stat, pv, v = chi2_test(cw, cr)
    if pv is not None:
        s2, p2 = chi2_scipy(cw, cr)
        assert stat == pytest.approx(s2, rel=1e-9, abs=1e-9)
        assert pv == pytest.approx(p2, rel=1e-9, abs=1e-12)
    assert psi(cw, cr) == pytest.approx(psi_numpy(cw, cr), abs=1e-9)
    assert js_distance(cw, cr) == pytest.approx(js_scipy(cw, cr), abs=1e-9)
    r = {x.check: x for x in evaluate(p, w, min_events=1)}
    unseen = sum(1 for x in window if x not in set(reference))
    assert r["unseen_rate"].statistic == pytest.approx(unseen / len(window))


def test_fairness_equals_fairlearn():
    fm = pytest.importorskip("fairlearn.metrics")
    rng = np.random.default_rng(11)
    n = 20_000
    groups = np.array(["a", "b", "c"], object)[rng.integers(0, 3, n)]
    y = rng.integers(0, 2, n).astype(np.int8)
    base = {"a": 0.5, "b": 0.35, "c": 0.45}
    pr = np.array([base[g] for g in groups]) + 0.2 * y
    pred = (rng.random(n) < pr).astype(np.int8)
    p = ReferenceProfile.build(numeric={}, prediction=pred, label=y, group=groups,
                               metadata={"reference_group": "a"})
    w = WindowSketch.empty(p).update(reference_batch(p, {}, {}, None, pred, y, groups))
    r = {(x.check, x.feature): x for x in evaluate(p, w, min_events=1, min_group_events=10)}
    kw = dict(y_true=y, y_pred=pred, sensitive_features=groups)
    assert r[("disparate_impact", "*")].statistic == pytest.approx(
        fm.demographic_parity_ratio(**kw), abs=1e-12)
    assert r[("demographic_parity_diff", "*")].statistic == pytest.approx(
        fm.demographic_parity_difference(**kw), abs=1e-12)
    assert r[("equalized_odds_diff", "*")].statistic == pytest.approx(
        fm.equalized_odds_difference(**kw), abs=1e-12)
    assert r[("equalized_odds_ratio", "*")].statistic == pytest.approx(
        fm.equalized_odds_ratio(**kw), abs=1e-12)
    assert r[("equal_opportunity_diff", "*")].statistic == pytest.approx(
        fm.equal_opportunity_difference(**kw), abs=1e-12)
    sel = fm.MetricFrame(metrics=fm.selection_rate, y_true=y, y_pred=pred,
                         sensitive_features=groups).by_group
    for g in "abc":
        assert r[("selection_rate", g)].statistic == pytest.approx(sel[g], abs=1e-12)
    # vs the reference group
    assert r[("disparate_impact_ref", "b")].statistic == pytest.approx(sel["b"] / sel["a"],
                                                                       abs=1e-12)
    di = r[("disparate_impact", "*")]
    assert di.p_value is not None and di.detail["ci_low"] <= di.effect_size <= di.detail["ci_high"]


def test_insufficient_windows_say_so():
    rng = np.random.default_rng(0)
    p, w = sketch_of(rng.normal(size=50), rng.normal(size=5000), n_bins=100)
    assert all(not r.sufficient for r in evaluate(p, w, min_events=500))
    empty = WindowSketch.empty(p)
    assert all(not r.sufficient and r.statistic is None for r in evaluate(p, empty))


def test_js_of_two_samples_of_one_distribution_stays_far_below_the_default_floor():
    """JS on deciles: a healthy window of 1,000-6,000 events must not look drifted (the
    plug-in JS on the 1000-bin grid reads ~0.18 here)."""
    rng = np.random.default_rng(12)
    ref = rng.lognormal(1, 0.6, 100_000)
    for n in (1_000, 6_000):
        p, w = sketch_of(rng.lognormal(1, 0.6, n), ref)
        js = {x.check: x for x in evaluate(p, w, min_events=10)}["js"].statistic
        assert js < 0.05, (n, js)
