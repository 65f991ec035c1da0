"""Model identity: the config's model name and version on every window report (validated
against the schema), the version the profile was built for, and the mismatch warning."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import jsonschema
import pyarrow as pa
import pytest

from monitor.config import from_dict
from monitor.dev.synthetic import Scenario, generate
from monitor.errors import ConfigError
from monitor.replay import replay
from monitor.stage2.evaluate import model_mismatch
from tests.e2e_harness import build_reference, config_dict

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "window-report.schema.json").read_text())


def _events(n: int = 12_000):
    cols = generate(Scenario(n_events=n, events_per_s=2_000, seed=5))
    return pa.table({k: v for k, v in cols.items() if not k.startswith("_")})


def test_reports_name_the_model_and_the_profile_records_its_version(caplog):
    tmp = Path(tempfile.mkdtemp())
    d = {**config_dict(tmp, "127.0.0.1:1", "t"), "model": {"name": "churn", "version": "v1"}}
    _, profile = build_reference(tmp, d, n=20_000)
    assert profile.metadata["model"] == {"name": "churn", "version": "v1"}
    cfg = from_dict(d, base_dir=tmp, env={})
    assert model_mismatch(cfg, profile) is None
    reports = list(replay(cfg, profile, _events()))
    assert reports and all((r.model, r.model_version, r.profile_model_version, r.model_key)
                           == ("churn", "v1", "v1", "churn:v1") for r in reports)
    for r in reports:
        jsonschema.validate(json.loads(json.dumps(r.to_dict())), SCHEMA)
        assert not r.profile_mismatch
    # the same profile under a config of the next version: a warning at start, and every
    # report says which version the profile belongs to
    v2 = from_dict({**d, "model": {"name": "churn", "version": 2}}, base_dir=tmp, env={})
    with caplog.at_level(logging.WARNING, logger="streamdrift.evaluate"):
        reports = list(replay(v2, profile, _events()))
    assert "built for model version 'v1', the config monitors '2'" in caplog.text
    assert all(r.model_version == "2" and r.profile_mismatch for r in reports)


def test_model_defaults_and_bad_names():
    tmp = Path(tempfile.mkdtemp())
    d = config_dict(tmp, "127.0.0.1:1", "t")
    cfg = from_dict(d, base_dir=tmp, env={})
    assert (cfg.model.name, cfg.model.version) == (cfg.monitor, "unversioned")
    for bad in ({"version": "a/b"}, {"name": "x/y"}, {"version_field": ""},
                {"version_field": "mv", "max_versions": 0}):
        with pytest.raises(ConfigError) as e:
            from_dict({**d, "model": bad}, base_dir=tmp, env={})
        assert "model" in str(e.value)
