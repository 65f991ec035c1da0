"""Detection you can trust (issue 13), over real kernels and the real evaluator: every
alerting check decides by a test and its floor, so small windows do not page on noise; a
heavier tail within the plausible range is drift, a unit bug is a quality fault."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import ReferenceProfile, WindowSketch
from kernels.batch import NULL
from kernels.window import reference_batch
from monitor.config import from_dict
from monitor.stage2.aggregate import ClosedWindow
from monitor.stage2.evaluate import Evaluator

CATS = np.array([f"k{i:02d}" for i in range(30)], object)


def config(checks=None, min_events=100):
    return from_dict({
        "monitor": "m", "kafka": {"bootstrap": "k:9092"}, "stream": {"topic": "t"},
        "features": {"numeric": ["x"], "categorical": ["c"]},
        "windows": {"size": "1m", "min_events": min_events}, "reference": {"profile": "/r"},
        "alerts": {"confirm_windows": 1}, "checks": checks or {}}, env={})


@pytest.fixture(scope="module")
def profiles():
    rng = np.random.default_rng(0)
    n = 100_000
    x = rng.lognormal(0, 1, n)
    x[rng.random(n) < 0.03] = np.nan  # 3 % missing in training
    return ReferenceProfile.build(numeric={"x": x}, categorical={"c": CATS[rng.integers(0, 30, n)]})


def window(profile, x, c=None, nulls=0, seed=1):
    rng = np.random.default_rng(seed)
    n = len(x)
    c = CATS[rng.integers(0, 30, n)] if c is None else c
    b = reference_batch(profile, {"x": np.asarray(x, float)}, {"c": c}, None, None, None, None)
    b.numeric_state[0, :nulls] = NULL
    b.numeric[0, :nulls] = np.nan
    return ClosedWindow(start_ms=0, end_ms=60_000, events=n, late_events=0, bad={},
                        partitions=[0], sketch=WindowSketch.empty(profile).update(b),
                        counts={}, recent_events=[n, n, n])


def verdicts(cfg, profile, w):
    return {(c.check, c.feature): c for c in Evaluator(cfg, profile).report(w).checks}


def test_many_categories_in_small_windows_do_not_page_on_plug_in_bias(profiles):
    """30 equally likely categories, windows of 300 events from the same distribution: the
    plug-in JS distance is ~0.13 from sampling alone, above its 0.1 floor; without a test
    nearly every window flagged. With the chi-square test under the budget: none."""
    cfg = config()
    rng = np.random.default_rng(5)
    js, flagged = [], 0
    for seed in range(20):
        w = window(profiles, rng.lognormal(0, 1, 300), seed=seed)
        r = verdicts(cfg, profiles, w)
        js.append(r[("js", "c")].effect_size)
        flagged += any(c.flagged for c in r.values())
    assert np.median(js) > 0.1  # the floor alone would page
    assert flagged == 0


def test_a_real_category_shift_in_a_small_window_still_pages(profiles):
    rng = np.random.default_rng(6)
    c = CATS[np.where(rng.random(300) < 0.5, 0, rng.integers(0, 30, 300))]  # half are k00
    r = verdicts(config(), profiles, window(profiles, rng.lognormal(0, 1, 300), c=c))
    assert r[("js", "c")].flagged and r[("chi2", "c")].flagged


def test_a_rate_just_over_its_floor_pages_only_when_significant(profiles):
    """null_rate against the reference's 3 % missing: the floor is the reference's rate (a
    doubling); 6.5 % is 0.035 over; in 200 events that is noise (binomial p ~ 0.008, over
    the window's budget), in 20,000 it is not."""
    cfg = config({"quality": {"null_rate_max": 0.01}})
    rng = np.random.default_rng(7)
    small = verdicts(cfg, profiles, window(profiles, rng.lognormal(0, 1, 200), nulls=13))
    assert small[("null_rate", "x")].effect_size > 0.03
    assert small[("null_rate", "x")].p_value > 0.001 and not small[("null_rate", "x")].flagged
    big = verdicts(cfg, profiles, window(profiles, rng.lognormal(0, 1, 20_000), nulls=1300))
    assert big[("null_rate", "x")].p_value < 1e-10 and big[("null_rate", "x")].flagged


@pytest.fixture(scope="module")
def low_nulls():
    """A reference with 0.5 % missing values."""
    rng = np.random.default_rng(10)
    n = 60_000
    x = rng.normal(0, 1, n)
    x[rng.random(n) < 0.005] = np.nan
    return ReferenceProfile.build(numeric={"x": x}, categorical={"c": CATS[rng.integers(0, 30, n)]})


def _null_window(profile, rng, n, rate):
    x = rng.normal(0, 1, n)
    return window(profile, x, nulls=int(rng.binomial(n, rate)), seed=int(rng.integers(1 << 30)))


def test_a_small_null_rate_that_doubles_pages_with_default_settings(low_nulls):
    """The policy "a doubling of a small rate": nulls 0.5 % -> 3 % in 10,000 events (binomial
    p ~ 1e-100) page with the default floor; before, the fixed 5 %-point floor hid them."""
    rng = np.random.default_rng(11)
    r = verdicts(config(), low_nulls, _null_window(low_nulls, rng, 10_000, 0.03))
    assert r[("null_rate", "x")].p_value < 1e-50 and r[("null_rate", "x")].flagged


def test_a_null_rate_that_neither_doubles_nor_moves_a_point_stays_quiet(low_nulls):
    """0.5 % -> 0.8 % in 10,000 events is significant (p ~ 1e-4 .. 1e-2) but under both
    minimums; 3 % -> 4.2 % (the other reference) is a point but not a doubling; drift-free
    windows at 0.5 % never page."""
    rng = np.random.default_rng(12)
    for _ in range(5):
        r = verdicts(config(), low_nulls, _null_window(low_nulls, rng, 10_000, 0.008))
        assert not r[("null_rate", "x")].flagged
    for _ in range(20):
        r = verdicts(config(), low_nulls, _null_window(low_nulls, rng, 10_000, 0.005))
        assert not any(c.flagged for c in r.values() if c.family == "quality")


def test_a_larger_reference_rate_needs_its_doubling(profiles):
    rng = np.random.default_rng(13)
    cfg = config({"quality": {"null_rate_max": 0.01}})  # before: a 0.01 floor paged here
    r = verdicts(cfg, profiles, window(profiles, rng.lognormal(0, 1, 20_000), nulls=840))
    assert r[("null_rate", "x")].p_value < 1e-10  # 4.2 % against 3 %: significant ...
    assert not r[("null_rate", "x")].flagged      # ... a point more, not a doubling


def test_heavier_tail_within_the_plausible_range_is_drift_not_a_data_bug(profiles):
    """Lognormal values, more of them far out but none beyond the reference's range: the
    robust-z outlier rate rises, and so does drift. That is drift (retrain), reported as
    drift; the outlier rate is explained by it."""
    rng = np.random.default_rng(8)
    x = rng.lognormal(0, 1.3, 5000)
    x = x[x < 15][:4000]  # the learned range reaches ~24
    r = verdicts(config(), profiles, window(profiles, x))
    assert not r[("out_of_range_rate", "x")].flagged
    assert r[("outlier_rate", "x")].effect_size > 0.01  # above its floor ...
    assert not r[("outlier_rate", "x")].flagged  # ... and explained by the field's drift
    assert any(c.flagged for c in r.values() if c.family == "numeric_drift")


def test_a_unit_bug_is_a_quality_fault_that_explains_the_drift(profiles):
    rng = np.random.default_rng(9)
    r = verdicts(config(), profiles, window(profiles, rng.lognormal(0, 1, 4000) * 1000))
    assert r[("out_of_range_rate", "x")].flagged
    assert not any(r[(k, "x")].flagged for k in ("ks", "psi", "js", "wasserstein", "ad"))
