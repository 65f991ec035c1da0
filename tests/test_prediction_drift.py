"""Prediction drift is its own family: a shift of the model's score alone — features and
decisions untouched — raises prediction_drift (the score's distribution) in exactly the
shifted windows and an alert through the policy, and nothing else; a change of the decisions
alone raises predicted_class_rate. The class-rate test is held to scipy's chi-square."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from monitor.config import from_dict
from monitor.dev.synthetic import Scenario, generate
from monitor.replay import replay
from monitor.stage2.evaluate import policy_from_config
from tests.e2e_harness import START_MS, WINDOW_MS, build_reference, config_dict


def _setup():
    tmp = Path(tempfile.mkdtemp())
    d = config_dict(tmp, "127.0.0.1:1", "t")
    _, profile = build_reference(tmp, d, n=50_000)
    cfg = from_dict(d, base_dir=tmp, env={})
    cols = generate(Scenario(n_events=48_000, events_per_s=2_000, seed=3))
    return cfg, profile, cols


def _alerts(cfg, reports):
    policy = policy_from_config(cfg)
    return [a for r in reports for a in policy.update(r).alerts]


def test_a_score_shift_alone_raises_prediction_drift_and_nothing_else():
    cfg, profile, cols = _setup()
    onset = START_MS + 4 * WINDOW_MS
    late = cols["ts"] >= onset
    cols["score"] = np.where(late, np.clip(cols["score"] + 0.12, 0.0, 1.0), cols["score"])
    reports = list(replay(cfg, profile, pa.table({k: v for k, v in cols.items()
                                                  if not k.startswith("_")})))
    assert len(reports) >= 6
    for r in reports:
        families = {c.family for c in r.flagged}
        if r.window_start_ms >= onset:
            assert "prediction_drift" in families, r.window_start_ms
            assert {c.feature for c in r.flagged if c.family == "prediction_drift"} == {"score"}
        else:
            assert "prediction_drift" not in families, r.window_start_ms
        assert not families & {"numeric_drift", "categorical_drift"}, (r.window_start_ms,
                                                                       families)
        assert not any(c.check == "predicted_class_rate" for c in r.flagged)
    alerts = _alerts(cfg, reports)
    firing = [a for a in alerts if a.kind == "firing"]
    assert firing and firing[0].window_start_ms == onset  # confirm_windows: 1
    items = {(i.family, i.feature) for a in firing for i in a.items}
    assert ("prediction_drift", "score") in items
    assert {f for f, _ in items} == {"prediction_drift"}, items


def test_a_changed_decision_rate_raises_predicted_class_rate():
    """The score and features untouched; from the onset a third of the approvals become
    refusals (the positive class 'approved' = 1): predicted_class_rate flags those windows,
    with the rates and the chi-square in its detail, and alerts."""
    cfg, profile, cols = _setup()
    onset = START_MS + 4 * WINDOW_MS
    rng = np.random.default_rng(9)
    flip = (cols["ts"] >= onset) & (cols["approved"] == 1) & (rng.random(cols["ts"].size) < 1 / 3)
    cols["approved"] = np.where(flip, 0, cols["approved"]).astype(np.int8)
    reports = list(replay(cfg, profile, pa.table({k: v for k, v in cols.items()
                                                  if not k.startswith("_")})))
    for r in reports:
        (c,) = [c for c in r.checks if c.check == "predicted_class_rate"]
        assert c.family == "prediction_drift" and c.feature == "class"
        late = r.window_start_ms >= onset
        assert c.flagged == late, (r.window_start_ms, c)
        if late:
            assert c.detail["reference_rate"] - c.statistic > 0.1
        assert not {x.check for x in r.flagged} - {"predicted_class_rate", "disparate_impact",
                                                   "disparate_impact_ref",
                                                   "demographic_parity_diff"}, r.flagged
    firing = [i for a in _alerts(cfg, reports) if a.kind == "firing" for i in a.items]
    assert ("prediction_drift", "predicted_class_rate", "class") in {
        (i.family, i.check, i.feature) for i in firing}


def test_class_rate_test_equals_scipys_chi_square():
    from scipy.stats import chi2_contingency

    from kernels.prediction import class_rate

    for k_w, n_w, k_r, n_r in ((300, 1000, 2000, 10_000), (5, 40, 30, 200), (0, 50, 3, 900),
                               (1000, 1000, 5, 10)):
        r = class_rate(k_w, n_w, k_r, n_r)
        chi2, p, _, _ = chi2_contingency([[k_w, n_w - k_w], [k_r, n_r - k_r]], correction=False)
        assert abs(r.chi2 - chi2) <= 1e-9 * max(1, chi2) and abs(r.p_value - p) <= 1e-12
        assert r.effect == abs(k_w / n_w - k_r / n_r)
    assert class_rate(0, 10, 0, 10).p_value == 1.0 and class_rate(3, 0, 1, 2) is None
