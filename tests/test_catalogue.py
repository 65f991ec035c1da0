"""The catalogue (kernels/catalogue.py) is the one declaration of every check: config
defaults, the config schema's check sections, the docs' table, the kernels' families and the
alert rules are held equal to it here."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from kernels.catalogue import CATALOGUE, CHECKS, FAMILIES, SECTION, table
from monitor.config import settings as S
from monitor.config.labels import LabelChecks
from monitor.stage2.evaluate import Evaluator, rules_from_config
from tests import test_setting_effects as effects
from tests.test_setting_effects import config, window

profile = effects.profile  # the same module-scoped fixture

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "monitor-config.schema.json").read_text())
SECTIONS = {"numeric": S.NumericChecks, "categorical": S.CategoricalChecks,
            "prediction": S.PredictionChecks, "fairness": S.FairnessChecks,
            "quality": S.QualityChecks, "labels": LabelChecks}  # labels: labels.checks
#: section keys that are switches or settings, not floors
NOT_FLOORS = {"enabled", "chi2", "volume_baseline_windows", "expected_events_per_window",
              "max_event_delay", "max_consumer_lag", "missing_rate_max"}


def _props(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node["properties"]


def test_each_check_is_declared_once_with_a_known_family():
    assert len(CATALOGUE) == len(CHECKS)
    assert {c.family for c in CHECKS} == set(FAMILIES)
    for c in CHECKS:
        assert c.min_sample in ("window", "group", "self", "labelled")
        assert c.test in (None, "p", "interval")
        if c.floor_key:
            assert c.floor_key.split(".")[0] in SECTIONS


@pytest.mark.parametrize("check", [c for c in CHECKS if c.floor_key], ids=lambda c:
                         f"{c.family}.{c.name}")
def test_config_default_equals_the_catalogue(check):
    section, *_, key = check.floor_key.split(".")
    fields = {f.name: f.default for f in dataclasses.fields(SECTIONS[section])}
    assert fields[key] == check.default


def test_schema_check_sections_hold_exactly_the_catalogue_keys():
    checks = SCHEMA["properties"]["checks"]["properties"]
    for section in set(SECTIONS) - {"labels"}:
        keys = {c.floor_key.split(".")[1] for c in CHECKS
                if c.floor_key and c.floor_key.startswith(section + ".")}
        if section == "prediction":  # the score shares numeric's section shape
            keys = {c.floor_key.split(".")[1] for c in CHECKS
                    if c.family == "prediction_drift"}
        have = set(_props(checks[section]))
        assert keys <= have, (section, keys - have)
        assert have - keys <= NOT_FLOORS, (section, have - keys - NOT_FLOORS)
    rule = SCHEMA["$defs"]["rule"]["properties"]
    for part in ("drift", "quality"):
        keys = {c.floor_key.split(".")[1] for c in CHECKS if c.per_feature == part}
        extra = {"enabled", "chi2"} if part == "drift" else {"enabled"}
        assert set(rule[part]["properties"]) == keys | extra, part


def test_docs_table_is_the_catalogue():
    assert table() in (ROOT / "docs" / "config.md").read_text()


def test_every_result_carries_a_catalogue_family_and_every_check_is_produced(profile):
    cfg = config({"quality": {"max_event_delay": "1m", "max_consumer_lag": 10}},
                 sensitive={"reference_group": "a"}, stream={"topic": "t", "event_id_field": "id"})
    r = Evaluator(cfg, profile).report(window(profile, rates={"b": 0.2}))
    seen = {(c.family, c.check) for c in r.checks}
    assert seen <= set(CATALOGUE), seen - set(CATALOGUE)
    # performance comes from delayed labels (stage2/performance.py; tests/test_performance.py)
    assert {k for k in CATALOGUE if k[0] != "performance"} == seen


def test_every_reported_check_meets_its_own_catalogue_rule(profile):
    """No check falls through to a catch-all: the first rule that matches names its family
    and check exactly, with the catalogue's floor (the config's defaults here)."""
    cfg = config()
    ev = Evaluator(cfg, profile)
    r = ev.report(window(profile))
    for c in r.checks:
        rule = ev.policy.rule_for(c)
        row = CATALOGUE[c.family, c.check]
        assert (rule.family, rule.check) == (c.family, c.check)
        want = row.default if not row.one_minus else 1 - row.default
        assert rule.warning == (want if row.alerts else np.inf), c.check
        assert rule.require_test == (row.test == "interval")


def test_sections_are_named_for_their_families():
    assert set(SECTION) == set(FAMILIES)
    assert set(rules_from_config(config())) >= set()  # builds without error


@pytest.mark.parametrize("name", ["window-report", "alert", "retraining-trigger"])
def test_schemas_name_every_catalogue_family(name):
    text = (ROOT / "schemas" / f"{name}.schema.json").read_text()
    for fam in FAMILIES:
        assert f'"{fam}"' in text
