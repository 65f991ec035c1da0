"""The quality checks of a closed window (monitor/stage2/quality.py) over real sketches: exact rates,
reference baselines, volume rules, schema changes, and the verdicts the policy gives them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from kernels import ReferenceProfile, WindowSketch
from kernels.batch import NULL, VALID
from kernels.window import reference_batch
from monitor.stage2.aggregate import ClosedWindow
from monitor.config import from_dict
from monitor.stage2.evaluate import Evaluator

N = 2000


@pytest.fixture(scope="module")
def profile():
    rng = np.random.default_rng(0)
    return ReferenceProfile.build(
        numeric={"x": rng.normal(size=20_000), "y": rng.lognormal(size=20_000)},
        categorical={"c": rng.choice(["a", "b", "c"], 20_000).astype(object)}, n_bins=100)


def config(**quality):
    return from_dict({
        "monitor": "m", "kafka": {"bootstrap": "k:9092"},
        "stream": {"topic": "t", "event_time": {"field": "ts"}, "event_id_field": "id"},
        "features": {"numeric": ["x", "y"], "categorical": ["c"]},
        "windows": {"size": "1m", "min_events": 500}, "reference": {"profile": "/r"},
        "alerts": {"confirm_windows": 1}, "checks": {"quality": quality}}, env={})


def window(profile, n=N, x=None, null_x=0, counts=None, recent=(N, N, N), bad=None, seed=1):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=n) if x is None else x
    b = reference_batch(profile, {"x": xs, "y": rng.lognormal(size=n)},
                        {"c": rng.choice(["a", "b", "c"], n).astype(object)},
                        None, None, None, None)
    b.numeric_state[0, :null_x] = NULL
    b.numeric[0, :null_x] = np.nan
    sk = WindowSketch.empty(profile).update(b) if n else None
    return ClosedWindow(start_ms=0, end_ms=60_000, events=n, late_events=0,
                        bad=bad or {}, partitions=[0] if n else [], sketch=sk,
                        counts=counts or {}, recent_events=list(recent))


def checks(report) -> dict:
    return {(c.check, c.feature): c for c in report.checks if c.family == "quality"}


def flagged(report) -> set:
    return {f"{c.check}/{c.feature}" for c in report.checks if c.flagged}


def test_a_healthy_window_flags_nothing_and_counts_are_exact(profile):
    r = Evaluator(config(), profile).report(window(profile, null_x=3))
    assert flagged(r) == set()
    q = checks(r)
    assert (q[("null_rate", "x")].statistic, q[("null_rate", "x")].detail["count"]) == (
        3 / N, 3)
    assert q[("volume_drop", "*")].statistic == 1.0 and q[("no_data", "*")].effect_size == 0.0
    assert r.quality["volume"] == {"events": N, "baseline": float(N), "recent_windows": 3}


def test_null_field_range_and_outliers_against_the_reference(profile):
    ev = Evaluator(config(), profile)
    assert flagged(ev.report(window(profile, null_x=400))) == {"null_rate/x"}
    x = np.random.default_rng(2).normal(size=N)
    x[:100] *= 1000  # 5 % of the values: a unit bug in part of the traffic
    r = ev.report(window(profile, x=x))
    assert flagged(r) == {"out_of_range_rate/x"}
    c = checks(r)[("out_of_range_rate", "x")]
    lo, hi = profile.default_bounds.range_lo[0], profile.default_bounds.range_hi[0]
    assert c.detail["count"] == int(((x < lo) | (x > hi)).sum())
    # the drift this causes is reported, explained by the quality alert, not flagged
    ks = next(k for k in r.checks if k.check == "ks" and k.feature == "x")
    assert ks.effect_size > 0.04 and not ks.flagged


def test_volume_drop_and_spike_against_recent_windows(profile):
    ev = Evaluator(config(), profile)
    assert flagged(ev.report(window(profile, n=800))) == {"volume_drop/*"}
    assert flagged(ev.report(window(profile, n=4400))) == {"volume_spike/*"}
    # fewer than three earlier windows: no baseline, no verdict
    r = ev.report(window(profile, n=800, recent=(N, N)))
    assert not checks(r)[("volume_drop", "*")].sufficient and flagged(r) == set()
    # a configured expectation replaces the learned baseline
    ev = Evaluator(config(expected_events_per_window=10_000), profile)
    assert flagged(ev.report(window(profile, recent=()))) == {"volume_drop/*"}


def test_silent_window_is_no_data_but_garbage_alone_is_not(profile):
    ev = Evaluator(config(), profile)
    r = ev.report(window(profile, n=0))
    assert flagged(r) == {"no_data/*"} and r.insufficient_data
    assert [c.severity for c in r.checks if c.flagged] == ["critical"]
    r = ev.report(window(profile, n=0, bad={"malformed": 700}))
    assert flagged(r) == {"bad_event_rate/*"}


def test_schema_change_names_what_changed(profile):
    ev = Evaluator(config(), profile)
    r = ev.report(window(profile, counts={"schema_sampled": 31, "schema_new:x_v2": 31}))
    assert flagged(r) == {"schema_change/*"}
    c = checks(r)[("schema_change", "*")]
    assert c.effect_size == 1.0 and c.detail["new_fields"] == "x_v2"
    assert r.quality["schema"] == {"absent_rate": {}, "sampled": 31, "new_fields": {"x_v2": 31},
                                   "never_seen": []}
    # known fields are not new (the decoder leaves them out of the samples): nothing fires
    assert flagged(ev.report(window(profile, counts={"schema_sampled": 31}))) == set()


def test_duplicates_and_consumer_lag(profile):
    ev = Evaluator(config(max_consumer_lag=1000), profile)
    r = ev.report(window(profile, counts={"duplicates": 100, "consumer_lag": 5000}))
    assert flagged(r) == {"duplicate_rate/*", "consumer_lag/*"}
    assert checks(r)[("duplicate_rate", "*")].statistic == 100 / (N + 100)
    assert r.quality["consumer_lag"] == 5000
    # without a limit the lag is neither judged nor reported (it depends on when we ran)
    r = Evaluator(config(), profile).report(window(profile, counts={"consumer_lag": 5000}))
    assert ("consumer_lag", "*") not in checks(r) and "consumer_lag" not in r.quality


def test_quality_off_is_drift_only(profile):
    r = Evaluator(config(enabled=False), profile).report(window(profile, null_x=400))
    assert not [c for c in r.checks if c.family == "quality" and c.check != "unseen_rate"]
    assert r.quality == {}


def test_reports_fit_the_window_report_schema(profile):
    schema = json.loads((Path(__file__).parents[1] / "schemas" /
                         "window-report.schema.json").read_text())
    ev = Evaluator(config(max_consumer_lag=10, max_event_delay="1m"), profile)
    for w in (window(profile, null_x=3, counts={"duplicates": 2, "schema_sampled": 30,
                                                "schema_new:z": 1, "consumer_lag": 3}),
              window(profile, n=0)):
        jsonschema.validate(orjson.loads(orjson.dumps(ev.report(w).to_dict())), schema)


def test_valid_state_constant():
    assert VALID == 0  # the fixtures above write decoder states directly
