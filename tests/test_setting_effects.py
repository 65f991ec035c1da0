"""Every check setting changes what the report or the alert says (issue 12's seven setting
bugs, each held by a test that failed before the fix): real kernels, real evaluator."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import ReferenceProfile, WindowSketch
from kernels.window import reference_batch
from monitor.config import from_dict
from monitor.errors import ConfigError
from monitor.stage2.aggregate import ClosedWindow
from monitor.stage2.evaluate import Evaluator

GROUPS = np.array(["a", "b", "c"], object)
CATS = np.array(["u", "v", "w", "z"], object)


@pytest.fixture(scope="module")
def profile():
    rng = np.random.default_rng(0)
    n = 40_000
    g = GROUPS[rng.integers(0, 3, n)]
    return ReferenceProfile.build(
        numeric={"x": rng.normal(size=n)},
        categorical={"c": CATS[rng.integers(0, 4, n)]},
        score=rng.normal(size=n), prediction=(rng.random(n) < 0.5).astype(np.int8),
        label=(rng.random(n) < 0.5).astype(np.int8), group=g, n_bins=200)


def config(checks=None, sensitive=None, **extra):
    d = {"monitor": "m", "kafka": {"bootstrap": "k:9092"}, "stream": {"topic": "t"},
         "features": {"numeric": ["x"], "categorical": ["c"]},
         "prediction": {"score": "score", "class": "approved", "label": "y"},
         "sensitive": {"attribute": "g", **(sensitive or {})},
         "windows": {"size": "1m", "min_events": 100}, "reference": {"profile": "/r"},
         "alerts": {"confirm_windows": 1}, "checks": checks or {}, **extra}
    return from_dict(d, env={})


def window(profile, n=4000, shift=0.0, score_shift=0.0, cat_p=None, rates=None, sizes=None,
           seed=1):
    """One closed window: x shifted by ``shift`` sd, the score by ``score_shift``, category
    shares ``cat_p``, selection rate per group ``rates``, group shares ``sizes``."""
    rng = np.random.default_rng(seed)
    g = GROUPS[rng.choice(3, n, p=sizes or [1 / 3] * 3)]
    rate = np.array([(rates or {}).get(x, 0.5) for x in g])
    b = reference_batch(profile, {"x": rng.normal(shift, 1, n)},
                        {"c": CATS[rng.choice(4, n, p=cat_p or [0.25] * 4)]},
                        rng.normal(score_shift, 1, n), (rng.random(n) < rate).astype(np.int8),
                        (rng.random(n) < 0.5).astype(np.int8), g)
    return ClosedWindow(start_ms=0, end_ms=60_000, events=n, late_events=0, bad={},
                        partitions=[0], sketch=WindowSketch.empty(profile).update(b),
                        counts={}, recent_events=[n, n, n])


def report(cfg, profile, w):
    return {(c.family, c.check, c.feature): c for c in Evaluator(cfg, profile).report(w).checks}


def flagged(r) -> set:
    return {k for k, c in r.items() if c.flagged}


MIX = [0.4, 0.2, 0.2, 0.2]  # Cramér's V about 0.1-0.2 against uniform


def test_chi2_is_judged_by_its_own_floor_not_js(profile):
    w = window(profile, cat_p=MIX)
    r = report(config({"categorical": {"js_floor": 0.9, "psi_floor": 9, "hellinger_floor": 0.9}}),
               profile, w)
    chi2 = r[("categorical_drift", "chi2", "c")]
    assert chi2.effect_size > 0.2 and chi2.flagged  # Cohen's w over chi2_floor 0.1
    r = report(config({"categorical": {"chi2_floor": 0.9}}), profile, w)
    assert not r[("categorical_drift", "chi2", "c")].flagged


def test_chi2_switch_turns_the_test_off(profile):
    w = window(profile, cat_p=MIX)
    assert ("categorical_drift", "chi2", "c") in report(config(), profile, w)
    r = report(config({"categorical": {"chi2": False}}), profile, w)
    assert ("categorical_drift", "chi2", "c") not in r
    assert ("categorical_drift", "js", "c") in r  # the rest of the family still runs


def test_fairness_enabled_false_leaves_fairness_out(profile):
    w = window(profile, rates={"a": 0.6, "b": 0.2, "c": 0.6})
    r = report(config(), profile, w)
    assert ("fairness", "disparate_impact", "*") in flagged(r)
    r = report(config({"fairness": {"enabled": False}}), profile, w)
    assert not any(k[0] == "fairness" for k in r)


def test_prediction_enabled_false_leaves_score_drift_out(profile):
    w = window(profile, score_shift=0.8)
    assert ("prediction_drift", "ks", "score") in flagged(report(config(), profile, w))
    r = report(config({"prediction": {"enabled": False}}), profile, w)
    assert not any(k[0] == "prediction_drift" for k in r)


def test_include_raw_values_is_gone_with_a_clear_message():
    with pytest.raises(ConfigError, match="output.include_raw_values: unknown field"):
        config(output={"include_raw_values": True})


def test_reference_group_reaches_the_comparison(profile):
    assert "reference_group" not in profile.metadata
    w = window(profile, rates={"a": 0.5, "b": 0.2, "c": 0.5})
    r = report(config(sensitive={"reference_group": "a"}), profile, w)
    ref = r[("fairness", "disparate_impact_ref", "b")]
    assert ref.detail["reference_group"] == "a" and ref.statistic == pytest.approx(0.4, abs=0.1)
    assert ("fairness", "disparate_impact_ref", "b") in flagged(r)
    assert not any(k[1] == "disparate_impact_ref" for k in report(config(), profile, w))


def test_disparate_impact_min_is_the_tested_threshold(profile):
    w = window(profile, rates={"a": 0.5, "b": 0.23, "c": 0.5})  # ratio about 0.46
    di = report(config({"fairness": {"disparate_impact_min": 0.5}}), profile, w)[
        ("fairness", "disparate_impact", "*")]
    assert di.detail["threshold"] == 0.5
    assert di.p_value > 0.01  # 0.46 is not credibly below 0.5 at these counts ...
    assert not di.flagged
    di = report(config(), profile, w)[("fairness", "disparate_impact", "*")]
    assert di.p_value < 1e-6 and di.flagged  # ... it is credibly below 0.8


def test_min_group_events_below_200_takes_effect(profile):
    w = window(profile, n=3000, rates={"a": 0.5, "b": 0.1, "c": 0.5}, sizes=[0.48, 0.04, 0.48])
    r = report(config(sensitive={"min_group_events": 50}), profile, w)
    di = r[("fairness", "disparate_impact", "*")]
    assert 50 <= di.n_window < 200 and di.sufficient and di.flagged
    di = report(config(sensitive={"min_group_events": 200}), profile, w)[
        ("fairness", "disparate_impact", "*")]
    assert not di.sufficient and not di.flagged


@pytest.mark.parametrize("check", ["wasserstein", "ad", "hellinger"])
def test_wasserstein_ad_and_hellinger_can_alert_and_their_floor_decides(profile, check):
    w = window(profile, shift=0.5)
    assert ("numeric_drift", check, "x") in flagged(report(config(), profile, w))
    r = report(config({"numeric": {f"{check}_floor": 50}}), profile, w)
    assert ("numeric_drift", check, "x") not in flagged(r)


def test_wasserstein_effect_is_in_reference_standard_deviations(profile):
    r = report(config(), profile, window(profile, shift=0.5, n=20_000))
    w1 = r[("numeric_drift", "wasserstein", "x")]
    assert w1.effect_size == pytest.approx(0.5, abs=0.05)


def test_slack_mention_only_on_critical_alerts():
    from monitor.records import Alert, AlertItem
    from monitor.sinks.slack_blocks import render

    def alert(severity, kind="firing", reason="new"):
        item = AlertItem(key="m/ks/x", check="ks", family="numeric_drift", feature="x",
                         severity=severity, statistic=0.3, p_value=1e-9, effect_size=0.3,
                         floor=0.1, level=0.001, n_window=5000, n_reference=50000,
                         since_window_start_ms=0, bad_windows=2)
        return Alert(alert_id="sd-1", kind=kind, reason=reason, monitor="m", window_start_ms=0,
                     window_end_ms=60_000, profile_id="p", monitor_version="0", severity=severity,
                     items=(item,), thread_alert_id=None, thread_resolved=False,
                     correction="bonferroni", family_level=0.01, tests_in_window=10)

    def mentions(a):
        return "<!here>" in str(render(a, mention="<!here>")[1])

    assert mentions(alert("critical"))
    assert mentions(alert("critical", "update", "escalated"))
    assert not mentions(alert("warning"))
    assert not mentions(alert("critical", "update", "repeat"))
