"""Fairness at any group size: the disparate-impact ratio is decided by its score test and
interval, not by a fixed minimum group of 200 events. A ratio of 0.20 in a group of ~125
events pages; a fair stream with small groups stays quiet over many windows; a group with no
positive decision at all is a finding (ratio 0 with its p-value and interval), never
"ratio 1.0, p = 1.0". Real kernels, the real evaluator and policy; scipy as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from kernels import ReferenceProfile, WindowSketch
from kernels.fairness import ratio_score_z, ratio_test
from kernels.window import reference_batch
from monitor.config import from_dict
from monitor.stage2.aggregate import ClosedWindow
from monitor.stage2.evaluate import Evaluator

GROUPS = np.array(["18-25", "26-35", "36-50", "51+"], object)


def config():
    return from_dict({
        "monitor": "m", "features": {"numeric": ["x"]},
        "prediction": {"score": "score", "threshold": 0.5},
        "sensitive": {"attribute": "age_band"},
        "windows": {"size": "1m", "min_events": 100}, "reference": {"profile": "/r"},
        "alerts": {"confirm_windows": 1}}, env={}, kafka=False)


@pytest.fixture(scope="module")
def profile():
    rng = np.random.default_rng(0)
    n = 40_000
    score = rng.random(n)
    return ReferenceProfile.build(numeric={"x": rng.normal(size=n)}, categorical={},
                                  score=score, prediction=(score >= 0.5).astype(np.int8),
                                  group=GROUPS[rng.integers(0, 4, n)])


def window(profile, sizes, rates, seed):
    """A window with ``sizes[g]`` events of group g, each approved with ``rates[g]``."""
    rng = np.random.default_rng(seed)
    group = np.repeat(GROUPS, sizes)
    approved = rng.random(group.size) < np.repeat(rates, sizes)
    score = np.where(approved, 0.75, 0.25)
    b = reference_batch(profile, {"x": rng.normal(size=group.size)}, {}, score,
                        approved.astype(np.int8), None, group)
    return ClosedWindow(start_ms=0, end_ms=60_000, events=group.size, late_events=0, bad={},
                        partitions=[0], sketch=WindowSketch.empty(profile).update(b),
                        counts={}, recent_events=[group.size] * 3)


def disparate_impact(profile, w, evaluator=None):
    report = (evaluator or Evaluator(config(), profile)).report(w)
    return next(c for c in report.checks if c.check == "disparate_impact")


def test_a_ratio_of_0_2_in_a_group_of_125_events_pages(profile):
    c = disparate_impact(profile, window(profile, [125, 600, 600, 600],
                                         [0.1, 0.5, 0.5, 0.5], seed=1))
    assert c.n_window == 125
    assert c.statistic < 0.35 and c.p_value < 1e-4
    assert c.detail["ci_low"] > 0.2  # the whole interval of 1 - ratio is past the floor
    assert c.flagged


def test_a_group_with_no_positive_decision_is_a_finding(profile):
    c = disparate_impact(profile, window(profile, [130, 600, 600, 600],
                                         [0.0, 0.5, 0.5, 0.5], seed=2))
    assert c.statistic == 0.0 and c.effect_size == 1.0
    assert c.detail["low_group"] == "18-25"
    # scipy's one-sided Fisher exact test agrees that 0 of 130 is no chance
    k_hi = round(c.detail["high_rate"] * c.detail["high_n"])
    fisher = stats.fisher_exact([[0, 130], [k_hi, c.detail["high_n"] - k_hi]],
                                alternative="less").pvalue
    assert c.p_value < 1e-6 and fisher < 1e-6
    assert c.detail["ci_low"] > 0.8 and c.flagged


def test_a_fair_stream_with_small_groups_stays_quiet(profile):
    """300 windows, groups of 15 to 60 events, all approved at 40 %: the plug-in ratio
    falls under 0.8 in most windows (small groups are noisy), yet nothing pages."""
    below, flagged = 0, 0
    ev = Evaluator(config(), profile)
    for seed in range(300):
        sizes = np.random.default_rng(seed).integers(15, 61, 4)
        c = disparate_impact(profile, window(profile, sizes, [0.4] * 4, seed=seed), ev)
        below += c.statistic < 0.8
        flagged += c.flagged
    assert below > 150
    assert flagged == 0


def test_the_score_statistic_matches_pearson_chi_square_at_ratio_1():
    for k1, n1, k2, n2 in [(30, 100, 45, 100), (3, 17, 40, 90), (0, 25, 12, 40)]:
        chi2 = stats.chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=False)[0]
        n = n1 + n2
        assert ratio_score_z(k1, n1, k2, n2, 1.0) ** 2 == pytest.approx(chi2 * (n - 1) / n)


def test_the_interval_covers_the_true_ratio_in_small_groups():
    """95 % interval of the ratio of two rates in groups of 20 and 40: covers the truth in
    about 95 % of 2,000 draws (the log-ratio interval breaks down at zero counts)."""
    rng = np.random.default_rng(9)
    p1, p2, covered = 0.15, 0.3, 0
    for _ in range(2000):
        k1, k2 = rng.binomial(20, p1), rng.binomial(40, p2)
        _, _, lo, hi = ratio_test(k1, 20, k2, 40, 0.8)
        covered += lo <= p1 / p2 <= hi
    assert 0.93 <= covered / 2000 <= 0.98
