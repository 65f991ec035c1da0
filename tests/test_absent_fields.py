"""Configured fields that never appear in the data are a schema problem from the first
window: the report's quality section and its ``schema_change`` check name them (a feature,
the label, the decision, the group attribute), and the check alerts through the policy like
any other quality fault."""

from __future__ import annotations

import pyarrow as pa
import pytest

from monitor.dev.synthetic import Scenario, generate
from monitor.replay import replay
from tests.e2e_harness import START_MS, build_reference, config_dict


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("absent")
    d = config_dict(tmp, "127.0.0.1:1", "t")
    cfg, profile = build_reference(tmp, d, n=20_000)
    cols = generate(Scenario(n_events=9_000, events_per_s=1_000, seed=4, start_ms=START_MS))
    table = pa.table({k: v for k, v in cols.items() if not k.startswith("_")})
    return cfg, profile, table


def _schema(report):
    return next(c for c in report.checks if c.check == "schema_change")


@pytest.mark.parametrize("dropped, named", [
    ("defaulted", "prediction.label 'defaulted'"),
    ("approved", "prediction.class 'approved'"),
    ("age_band", "sensitive.attribute 'age_band'"),
    ("income", "features.numeric 'income'")])
def test_a_configured_field_absent_from_the_data_is_named_in_the_first_window(
        ref, dropped, named):
    cfg, profile, table = ref
    assert dropped in table.column_names
    reports = list(replay(cfg, profile, table.drop_columns([dropped]), progress=False))
    first = reports[0]
    c = _schema(first)
    assert named in first.quality["schema"]["never_seen"], first.quality["schema"]
    assert named in c.detail["never_seen"]
    assert c.effect_size == pytest.approx(1.0, abs=0.01) and c.flagged


def test_all_fields_present_is_no_schema_problem(ref):
    cfg, profile, table = ref
    first = list(replay(cfg, profile, table, progress=False))[0]
    assert first.quality["schema"]["never_seen"] == []
    assert not _schema(first).flagged


def test_the_policy_alerts_and_names_the_missing_label(ref):
    from monitor.stage2.evaluate import policy_from_config

    cfg, profile, table = ref
    policy = policy_from_config(cfg)  # e2e config: confirm_windows 1
    alerts = [a for r in replay(cfg, profile, table.drop_columns(["defaulted"]),
                                progress=False) for a in policy.update(r).alerts]
    firing = [a for a in alerts if a.kind == "firing"]
    assert firing and firing[0].window_start_ms == START_MS
    item = next(i for i in firing[0].items if i.check == "schema_change")
    assert "prediction.label 'defaulted'" in item.detail["never_seen"]
