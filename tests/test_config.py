"""The config: the example loads, every bad field fails with its path named, secrets stay
hidden, the bootstrap override works, client settings come out right."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import yaml

from monitor import config as C
from monitor.errors import ConfigError, StreamdriftError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "monitor.yaml"

MINIMAL = {
    "monitor": "loan-default",
    "kafka": {"bootstrap": "127.0.0.1:9092"},
    "stream": {"topic": "loan-events"},
    "features": {"numeric": ["income", "debt_ratio"], "categorical": ["region"]},
    "windows": {"size": "60s"},
    "reference": {"profile": "ref.profile"},
}


def with_(base: dict, path: str, value) -> dict:
    """A deep copy of ``base`` with ``path`` (dots) set to ``value`` (``DELETE`` removes)."""
    d = copy.deepcopy(base)
    cur = d
    *parents, last = path.split(".")
    for p in parents:
        cur = cur.setdefault(p, {})
    if value is DELETE:
        del cur[last]
    else:
        cur[last] = value
    return d


DELETE = object()


def example_dict() -> dict:
    return yaml.load(EXAMPLE.read_text(), Loader=C._Loader)


def test_example_config_loads_and_validates():
    cfg = C.load(EXAMPLE, env={})
    assert cfg.monitor == "loan-default"
    assert len(cfg.features.numeric) == 20 and cfg.features.categorical == (
        "region", "channel", "product")
    assert cfg.windows.size_ms == 60_000 and cfg.windows.slide_ms is None
    assert cfg.triggers.on == "critical" and cfg.triggers.cooldown_ms == 6 * 3_600_000
    assert cfg.reference.profile == EXAMPLE.parent / "ref.profile"  # relative to the file
    assert cfg.source == EXAMPLE
    assert cfg.prediction.class_ == "approved" and cfg.prediction.positive_label == 0
    assert cfg.alerts.silences[0].until_ms == 1_772_323_200_000
    # rules: later overrides, globs, type filters
    assert cfg.feature("late_30d").floors["psi"] == 0.3
    assert cfg.feature("late_90d").floors["psi"] == 0.3
    assert cfg.feature("income").floors["psi"] == 0.035
    assert cfg.feature("utilization").range == (0, None)
    assert cfg.feature("channel").floors["unseen_rate"] == 0.005
    assert cfg.feature("region").floors["unseen_rate"] == 0.01
    assert cfg.fields[-2:] == ("ts", "event_id")


def test_minimal_config_gets_defaults():
    cfg = C.from_dict(MINIMAL, base_dir="/srv/sd", env={})
    assert cfg.kafka.group_id == "streamdrift-loan-default"
    assert cfg.kafka.security_protocol == "PLAINTEXT"
    assert cfg.stream.format == "json" and cfg.stream.event_time is None
    assert cfg.windows.allowed_lateness_ms == 10_000 and cfg.windows.min_events == 500
    assert cfg.topics.dead_letter == "streamdrift.loan-default.dlq"
    assert cfg.checks.family_level == 0.01 and cfg.checks.correction == "bonferroni"
    assert cfg.alerts.repeat_interval_ms == 3_600_000
    assert cfg.slack is None and cfg.sensitive is None
    assert cfg.http.port == 9108
    assert cfg.reference.profile == Path("/srv/sd/ref.profile")


def test_config_is_frozen_hashable_and_picklable():
    cfg = C.load(EXAMPLE, env={})
    with pytest.raises(AttributeError):
        cfg.monitor = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.kafka.properties["x"] = 1  # type: ignore[index]
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert hash(cfg.kafka) == hash(pickle.loads(pickle.dumps(cfg.kafka)))


@pytest.mark.parametrize("duration, ms", [
    ("500ms", 500), ("10s", 10_000), ("5m", 300_000), ("1h", 3_600_000), ("2d", 172_800_000),
    ("1.5s", 1500), ("250ms", 250), ("0s", 0)])
def test_durations(duration, ms):
    assert C.parse_duration(duration) == ms
    if ms > 0:
        cfg = C.from_dict(with_(MINIMAL, "windows.size", duration), env={})
        assert cfg.windows.size_ms == ms


BAD = [
    # (path set, value, path named in the error, words in the message)
    ("windows.size", "abc", "windows.size", 'expected a duration with its unit, like "60s"'),
    ("windows.size", "10 s", "windows.size", "duration"),
    ("windows.size", "0s", "windows.size", "above 0"),
    ("windows.size", 60, "windows.size", "60 has no unit; write 60s or 60ms"),
    ("windows.size", True, "windows.size", "duration"),
    ("windows.slide", "7s", "windows.slide", "must divide windows.size"),
    ("windows.slide", "2m", "windows.slide", "must divide windows.size"),
    ("windows.allowed_lateness", "-1s", "windows.allowed_lateness", "duration"),
    ("windows.min_events", 0, "windows.min_events", ">= 1"),
    ("windows.size", DELETE, "windows.size", "required"),
    ("monitor", 12, "monitor", "a name of letters"),
    ("monitor", "has space", "monitor", "a name of letters"),
    ("monitor", DELETE, "monitor", "required"),
    ("kafka.bootstrap", "localhost", "kafka.bootstrap", '"host:port"'),
    ("kafka.bootstrap", [], "kafka.bootstrap", '"host:port"'),
    ("kafka.security_protocol", "TLS", "kafka.security_protocol", '"SASL_SSL"'),
    ("kafka.security_protocol", "SASL_SSL", "kafka.sasl", "required when"),
    ("kafka.session_timeout_ms", 10, "kafka.session_timeout_ms", ">= 1000"),
    ("kafka.sasl", {"mechanism": "PLAIN", "username": "u", "password": "x"},
     "kafka.sasl.password", "secrets are never written"),
    ("kafka.sasl", {"mechanism": "MD5", "username": "u", "password_env": "P"},
     "kafka.sasl.mechanism", "SCRAM-SHA-512"),
    ("kafka.sasl", {"mechanism": "PLAIN", "username": "u", "password_env": "P"},
     "kafka.security_protocol", "kafka.sasl is set"),
    ("kafka.tls", {"ca_file": "ca.pem"}, "kafka.tls", "only used with security_protocol SSL"),
    ("kafka.properties", {"sasl.password": "x"}, "kafka.properties.sasl.password",
     "secrets are never written"),
    ("kafka.properties", {"bootstrap.servers": "a:1"}, "kafka.properties.bootstrap.servers",
     "set by its own field"),
    ("kafka.properties", {"linger.ms": [1]}, "kafka.properties.linger.ms", "string, number"),
    ("kafka.colour", "blue", "kafka.colour", "unknown field"),
    ("windws", {}, "windws", "did you mean 'windows'"),
    ("stream.topic", "bad topic!", "stream.topic", "Kafka topic name"),
    ("stream.topic", DELETE, "stream.topic", "required"),
    ("stream.format", "protobuf", "stream.format", '"json", "avro"'),
    ("stream.format", "avro", "stream.schema_registry_url", "required when stream.format is avro"),
    ("stream.schema_registry_url", "registry:8081", "stream.schema_registry_url", "http://"),
    ("stream.event_time", {"field": "ts", "unit": "us"}, "stream.event_time.unit", '"iso8601"'),
    ("stream.event_time", {"unit": "ms"}, "stream.event_time.field", "required"),
    ("stream.batch_size", 0, "stream.batch_size", ">= 1"),
    ("features.numeric", ["income", "income"], "features.numeric", "more than once"),
    ("features.numeric", "income", "features.numeric", "list"),
    ("features.numeric", [""], "features.numeric[0]", "field name"),
    ("features.categorical", ["income"], "features.categorical", "listed as numeric too"),
    ("features.rules", [{"match": "nope*"}], "features.rules[0].match", "matches no configured"),
    ("features.rules", [{"match": "region", "type": "numeric"}], "features.rules[0].match",
     "matches no configured numeric"),
    ("features.rules", [{"match": "income", "range": [5, 1]}], "features.rules[0].range",
     "above high"),
    ("features.rules", [{"match": "income", "range": [1]}], "features.rules[0].range",
     "[low, high]"),
    ("features.rules", [{"match": "region", "range": [0, 1]}], "features.rules[0].range",
     "only applies to numeric"),
    ("features.rules", [{"match": "income", "drift": {"psi": 1}}],
     "features.rules[0].drift.psi", "did you mean 'psi_floor'"),
    ("features.rules", [{"type": "numeric"}], "features.rules[0].match", "required"),
    ("features", {}, "features", "nothing to watch"),
    ("prediction", {"threshold": 0.5}, "prediction.threshold", "without prediction.score"),
    ("prediction", {"score": "income"}, "prediction.score", "already used by features.numeric"),
    ("prediction", {"class": "region"}, "prediction.class", "already used"),
    ("sensitive", {"attribute": "age_band"}, "sensitive", "fairness needs the model's decision"),
    ("sensitive", {"attribute": "age_band", "min_group_events": 0},
     "sensitive.min_group_events", ">= 1"),
    ("reference.profile", DELETE, "reference.profile", "required"),
    ("reference.rolling_windows", -1, "reference.rolling_windows", ">= 0"),
    ("checks.family_level", 2, "checks.family_level", "between 0 and 1"),
    ("checks.family_level", 0, "checks.family_level", "between 0 and 1"),
    ("checks.correction", "holm", "checks.correction", '"benjamini-hochberg"'),
    ("checks.numeric", {"ks_floor": -0.1}, "checks.numeric.ks_floor", ">= 0"),
    ("checks.categorical", {"chi2": "yes"}, "checks.categorical.chi2", "true or false"),
    ("checks.fairness", {"disparate_impact_min": 1.5}, "checks.fairness.disparate_impact_min",
     "between 0 and 1"),
    ("checks.quality", {"missing_rate": 0.1}, "checks.quality.missing_rate",
     "did you mean 'missing_rate_max'"),
    ("topics", {"alerts": "loan-events"}, "topics.alerts", "must differ from stream.topic"),
    ("topics", {"dlq": "x"}, "topics.dlq", "unknown field"),
    ("output", {"reports_jsonl": 3}, "output.reports_jsonl", "null or a file path"),
    ("alerts", {"confirm_windows": 0}, "alerts.confirm_windows", ">= 1"),
    ("alerts", {"repeat_interval": "often"}, "alerts.repeat_interval", "duration"),
    ("alerts", {"silences": [{"feature": "income"}]}, "alerts.silences[0].reason", "required"),
    ("alerts", {"silences": [{"reason": "x", "until": "tomorrow"}]},
     "alerts.silences[0].until", "ISO 8601"),
    ("alerts", {"silences": [{"reason": "x", "until": "2026-03-01T00:00:00"}]},
     "alerts.silences[0].until", "with a zone"),
    ("slack", {"channel": "#x", "token": "xoxb-1"}, "slack.token", "secrets are never written"),
    ("slack", {"channel": "#x"}, "slack.token_env", "required"),
    ("slack", {"channel": "#x", "token_env": "A", "token_file": "/t"}, "slack.token_env",
     "not both"),
    ("slack", {"channel": "#x", "token_env": "not a var"}, "slack.token_env",
     "name of an environment variable"),
    ("slack", {"channel": "#x", "token_env": "T", "runbook_url": "wiki"}, "slack.runbook_url",
     "http(s) URL"),
    ("slack", {"token_env": "T"}, "slack.channel", "required"),
    ("triggers", {"on": "never"}, "triggers.on", '"warning", "critical"'),
    ("triggers", {"cooldown": "soon"}, "triggers.cooldown", "duration"),
    ("http", {"port": 70000}, "http.port", "<= 65535"),
    ("version", 2, "version", "1 (the only config version"),
]


@pytest.mark.parametrize("path, value, named, words", BAD,
                         ids=[f"{p}={v!r}"[:60] for p, v, _, _ in BAD])
def test_bad_field_names_its_path(path, value, named, words):
    with pytest.raises(ConfigError) as ei:
        C.from_dict(with_(MINIMAL, path, value), env={})
    e = ei.value
    assert isinstance(e, StreamdriftError)
    paths = [p for p, _ in e.problems]
    assert named in paths, str(e)
    msg = dict(e.problems)[named]
    assert words in msg, msg
    assert f"{named}: " in str(e)


def test_every_problem_is_reported_at_once():
    d = with_(with_(MINIMAL, "windows.size", "abc"), "stream.format", "xml")
    with pytest.raises(ConfigError) as ei:
        C.from_dict(d, env={})
    assert {"windows.size", "stream.format"} <= {p for p, _ in ei.value.problems}


@pytest.mark.parametrize("text, words", [
    ("", "is empty"),
    ("monitor: [unclosed", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("monitor: a\nmonitor: b\n", "duplicate key"),
])
def test_bad_files(tmp_path, text, words):
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=words):
        C.load(p, env={})


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read config file"):
        C.load("/nonexistent/monitor.yaml")


def test_yaml_on_no_yes_stay_strings(tmp_path):
    """PyYAML's YAML 1.1 would read ``on`` as True and ``no`` as False."""
    d = copy.deepcopy(MINIMAL)
    d["triggers"] = {"on": "warning"}
    text = yaml.safe_dump(d).replace("warning", "critical")
    text += "prediction: {class: approved, positive_class: yes}\n"
    p = tmp_path / "m.yaml"
    p.write_text(text)
    cfg = C.load(p, env={})
    assert cfg.triggers.on == "critical" and cfg.prediction.positive_class == "yes"


SASL = {"security_protocol": "SASL_SSL",
        "sasl": {"mechanism": "SCRAM-SHA-512", "username": "sd", "password_env": "SD_KAFKA_PW"}}


def sasl_cfg(**kafka):
    d = copy.deepcopy(MINIMAL)
    d["kafka"].update(copy.deepcopy(SASL), **kafka)
    d["slack"] = {"channel": "#ml-oncall", "token_env": "SD_SLACK",
                  "webhook_url_file": "hook.txt"}
    return d


def test_secrets_never_in_repr_or_str(tmp_path):
    (tmp_path / "hook.txt").write_text("https://hooks.example.com/SECRET-HOOK\n")
    env = {"SD_KAFKA_PW": "SECRET-PW", "SD_SLACK": "xoxb-SECRET-TOKEN"}
    cfg = C.from_dict(sasl_cfg(), base_dir=tmp_path, env=env)
    text = repr(cfg) + str(cfg) + repr(cfg.kafka.sasl) + str(cfg.slack)
    for s in ("SECRET-PW", "SECRET-TOKEN", "SECRET-HOOK"):
        assert s not in text
    assert "SD_KAFKA_PW" in text  # where to look is shown, the value is not
    assert cfg.kafka.sasl.password.reveal(env) == "SECRET-PW"
    assert cfg.slack.token.reveal(env) == "xoxb-SECRET-TOKEN"
    assert cfg.slack.webhook_url.reveal(env) == "https://hooks.example.com/SECRET-HOOK"
    assert "SECRET" not in repr(pickle.loads(pickle.dumps(cfg)))


def test_secret_resolution_is_lazy_and_errors_name_the_field(tmp_path):
    cfg = C.from_dict(sasl_cfg(), base_dir=tmp_path, env={})  # nothing set: loads fine
    with pytest.raises(ConfigError) as ei:
        cfg.kafka.sasl.password.reveal({})
    assert ei.value.path == "kafka.sasl.password_env" and "SD_KAFKA_PW" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        cfg.slack.webhook_url.reveal({})
    assert ei.value.path == "slack.webhook_url_file"
    (tmp_path / "hook.txt").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        cfg.slack.webhook_url.reveal({})


def test_password_file(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    d = sasl_cfg()
    d["kafka"]["sasl"] = {"mechanism": "PLAIN", "username": "u", "password_file": "pw"}
    cfg = C.from_dict(d, base_dir=tmp_path, env={})
    assert C.kafka_client_config(cfg, {})["sasl.password"] == "from-file"


def test_bootstrap_env_override():
    cfg = C.from_dict(MINIMAL, env={C.BOOTSTRAP_ENV: "broker-1:9093,broker-2:9093"})
    assert cfg.kafka.bootstrap == "broker-1:9093,broker-2:9093"
    assert C.from_dict(MINIMAL, env={C.BOOTSTRAP_ENV: ""}).kafka.bootstrap == "127.0.0.1:9092"
    assert C.from_dict(with_(MINIMAL, "kafka.bootstrap", ["a:1", "b:2"]),
                       env={}).kafka.bootstrap == "a:1,b:2"


def test_bootstrap_env_override_from_process_env(monkeypatch):
    monkeypatch.setenv(C.BOOTSTRAP_ENV, "elsewhere:9092")
    assert C.load(EXAMPLE).kafka.bootstrap == "elsewhere:9092"


def test_kafka_client_config_sasl_tls(tmp_path):
    for f in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / f).write_text("x")
    d = sasl_cfg(tls={"ca_file": "ca.pem", "cert_file": "client.pem", "key_file": "client.key",
                      "key_password_env": "SD_KEY_PW", "check_hostname": False},
                 properties={"client.id": "sd", "fetch.max.bytes": 1000})
    cfg = C.from_dict(d, base_dir=tmp_path, env={})
    got = C.kafka_client_config(cfg, {"SD_KAFKA_PW": "pw", "SD_KEY_PW": "kpw"})
    assert got == {
        "bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "sd", "sasl.password": "pw",
        "ssl.ca.location": str(tmp_path / "ca.pem"),
        "ssl.certificate.location": str(tmp_path / "client.pem"),
        "ssl.key.location": str(tmp_path / "client.key"), "ssl.key.password": "kpw",
        "ssl.endpoint.identification.algorithm": "none",
        "client.id": "sd", "fetch.max.bytes": 1000}


def test_kafka_client_config_missing_tls_file(tmp_path):
    d = with_(with_(MINIMAL, "kafka.security_protocol", "SSL"), "kafka.tls",
              {"ca_file": "missing.pem"})
    cfg = C.from_dict(d, base_dir=tmp_path, env={})
    with pytest.raises(ConfigError) as ei:
        C.kafka_client_config(cfg, {})
    assert ei.value.path == "kafka.tls.ca_file"


def test_faust_broker_settings():
    cfg = C.from_dict(with_(MINIMAL, "kafka.bootstrap", "a:1,b:2"), env={})
    assert C.faust_broker_settings(cfg) == {"broker": "kafka://a:1;kafka://b:2",
                                            "broker_credentials": None}
    d = sasl_cfg()
    d["kafka"]["security_protocol"] = "SASL_PLAINTEXT"
    creds = C.faust_broker_settings(C.from_dict(d, env={}),
                                    {"SD_KAFKA_PW": "pw"})["broker_credentials"]
    assert creds.username == "sd" and creds.password == "pw"
    assert str(creds.mechanism.value) == "SCRAM-SHA-512"
    assert "pw" not in repr(C.from_dict(d, env={}))


def test_silence_covers():
    s = C.Silence(reason="r", feature="debt_*", until_ms=1000)
    assert s.covers(feature="debt_ratio", check="psi", family="numeric_drift", now_ms=999)
    assert not s.covers(feature="debt_ratio", check="psi", family="numeric_drift", now_ms=1000)
    assert not s.covers(feature="income", check="psi", family="numeric_drift", now_ms=0)


def test_hopping_windows_and_slide_equal_to_size():
    assert C.from_dict(with_(MINIMAL, "windows.slide", "15s"), env={}).windows.slide_ms == 15_000
    assert C.from_dict(with_(MINIMAL, "windows.slide", "60s"), env={}).windows.slide_ms is None
