"""Prediction drift is its own check: a shift of the model's score alone — features and
decisions untouched — raises prediction_drift in exactly the shifted windows, and nothing
else."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from monitor.config import from_dict
from monitor.dev.synthetic import Scenario, generate
from monitor.replay import replay
from tests.e2e_harness import START_MS, WINDOW_MS, build_reference, config_dict


def test_a_score_shift_alone_raises_prediction_drift_and_nothing_else():
    tmp = Path(tempfile.mkdtemp())
    d = config_dict(tmp, "127.0.0.1:1", "t")
    _, profile = build_reference(tmp, d, n=50_000)
    cfg = from_dict(d, base_dir=tmp, env={})
    cols = generate(Scenario(n_events=48_000, events_per_s=2_000, seed=3))
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
