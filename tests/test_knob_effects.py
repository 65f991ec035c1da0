"""Config keys that had no test of their effect (tests/test_knobs.py names these tests).

Each test builds the config twice, with two values of the key, and shows what changes: a
report, an alert, a topic the monitor creates or an ACL ``streamdrift check`` demands, what a
sink sends, or the error line. No broker here (tests/test_knob_effects_kafka.py has the keys
whose effect only a broker shows).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest

from kernels import ReferenceProfile
from monitor.access import needs
from monitor.config import from_dict, registry_options
from monitor.errors import ConfigError, StreamdriftError
from monitor.pipeline import load_profile
from monitor.sinks.from_config import make_sinks
from monitor.records import CheckResult, WindowReport
from monitor.sinks import SinkUnavailable
from monitor.stage2.evaluate import Evaluator, policy_from_config
from monitor.topics import wanted_topics
from tests.slack_server import SlackServer
from tests.test_slack_sink import ALERTS, TOKEN, deliver_all
from tests.test_webhook_sink import Receiver

MIN = 60_000
NO_BROKER = {"bootstrap.servers": "127.0.0.1:1"}


def base(**sections) -> dict:
    d = {"monitor": "loan", "kafka": {"bootstrap": "127.0.0.1:1"}, "stream": {"topic": "t"},
         "features": {"numeric": ["x"], "categorical": ["c"]}, "windows": {"size": "1m"},
         "reference": {"profile": "/r"}, "triggers": {"enabled": False}}
    d.update(sections)
    return d


def cfg_of(**sections):
    return from_dict(base(**sections), env={})


# -- version, monitor -----------------------------------------------------------------------

def test_version_is_checked():
    assert cfg_of(version=1).monitor == "loan"
    with pytest.raises(ConfigError) as e:
        cfg_of(version=2)
    assert e.value.path == "version" and "1 (the only config version so far)" in str(e.value)


def test_monitor_name_reaches_topics_groups_and_alert_keys():
    a, b = cfg_of(), cfg_of(monitor="fraud")
    assert {t.name for t in wanted_topics(a)} & {t.name for t in wanted_topics(b)} == set()
    assert "streamdrift.fraud.alerts" in {t.name for t in wanted_topics(b)}
    assert {n.name for n in needs(b) if n.kind == "group"} >= {"streamdrift-fraud"}
    check = CheckResult(check="ks", family="numeric_drift", feature="x", statistic=0.3,
                        p_value=1e-12, effect_size=0.3, n_window=10_000, n_reference=100_000,
                        sufficient=True)
    keys = []
    for cfg in (a, b):
        policy = policy_from_config(cfg)
        out = []
        for i in range(3):
            r = WindowReport(cfg.monitor, i * MIN, (i + 1) * MIN, "p", 10_000, 0, 0, [0], {},
                             [check], False, "0")
            out += policy.update(r).alerts
        keys.append(out[0].keys)
    assert keys == [["loan/loan:unversioned/ks/x"], ["fraud/fraud:unversioned/ks/x"]]


# -- topics: what `run` creates and what `check` demands ------------------------------------

TOPIC_ROLES = ["partials", "reports", "alerts", "triggers", "dead_letter", "state"]


@pytest.mark.parametrize("role", TOPIC_ROLES)
def test_topic_names_reach_what_run_creates_and_check_demands(role):
    default = {t.role: t.name for t in wanted_topics(cfg_of(triggers={"enabled": True}))}
    cfg = cfg_of(topics={role: "custom.topic"}, triggers={"enabled": True})
    got = {t.role: t.name for t in wanted_topics(cfg)}
    assert got[role] == "custom.topic" != default[role]
    assert {k: v for k, v in got.items() if k != role} == \
        {k: v for k, v in default.items() if k != role}
    demanded = {n.name for n in needs(cfg) if n.kind == "topic"}
    assert "custom.topic" in demanded and default[role] not in demanded


@pytest.mark.parametrize("key", ["partials", "reports", "alerts", "triggers"])
def test_topic_retentions_reach_the_topic_policies(key):
    cfg = cfg_of(topics={"retention": {key: "40d"}}, triggers={"enabled": True})
    pol = {t.role: t.config.get("retention.ms") for t in wanted_topics(cfg)}
    default = {t.role: t.config.get("retention.ms") for t in wanted_topics(cfg_of())}
    assert pol[key] == str(40 * 86_400_000) != default[key]
    assert {k: v for k, v in pol.items() if k != key} == \
        {k: v for k, v in default.items() if k != key}


def test_dead_letter_retention_reaches_its_topic_policy():
    pol = {t.role: t.config.get("retention.ms")
           for t in wanted_topics(cfg_of(dead_letter={"retention": "2d"}))}
    assert pol["dead_letter"] == str(2 * 86_400_000)


def test_group_id_names_every_group_and_the_transactional_id():
    cfg = cfg_of(kafka={"bootstrap": "127.0.0.1:1", "group_id": "risk-team"},
                 triggers={"enabled": True},
                 webhooks=[{"name": "ops", "url": "http://127.0.0.1:1/x"}])
    groups = {n.name for n in needs(cfg) if n.kind in ("group", "transactional_id")}
    assert {"risk-team", "risk-team-stage2", "risk-team-triggers",
            "risk-team-stage2-state-reader"} <= groups
    assert not {g for g in groups if g.startswith("streamdrift-loan")}
    cfg = cfg_of(kafka={"bootstrap": "127.0.0.1:1", "group_id": "risk-team"},
                 webhooks=[{"name": "ops", "url": "http://127.0.0.1:1/x"}])
    (delivery,) = make_sinks(cfg, NO_BROKER)
    delivery.close()
    assert delivery.group_id == "risk-team-ops"


def test_triggers_enabled_decides_whether_the_trigger_sink_runs():
    off = cfg_of()
    assert make_sinks(off, NO_BROKER) == []
    assert not [n for n in needs(off) if n.name == off.topics.triggers]
    on = cfg_of(triggers={"enabled": True})
    assert {(n.name, n.operation) for n in needs(on) if n.name == on.topics.triggers} == {
        (on.topics.triggers, "READ"), (on.topics.triggers, "WRITE")}


# -- features, reference, windows, quality ---------------------------------------------------

def test_rule_type_limits_a_rule_to_one_kind_of_feature():
    rule = {"match": "*", "drift": {"enabled": False}}
    untyped = cfg_of(features={"numeric": ["x"], "categorical": ["c"], "rules": [rule]})
    typed = cfg_of(features={"numeric": ["x"], "categorical": ["c"],
                             "rules": [{**rule, "type": "numeric"}]})
    assert (untyped.feature("x").drift_enabled, untyped.feature("c").drift_enabled) == \
        (False, False)
    assert (typed.feature("x").drift_enabled, typed.feature("c").drift_enabled) == \
        (False, True)


@pytest.fixture(scope="module")
def synthetic():
    from tests.e2e_harness import build_reference, config_dict

    tmp = Path(tempfile.mkdtemp())
    d = config_dict(tmp, "127.0.0.1:1", "t")
    _, profile = build_reference(tmp, d, n=20_000)
    from monitor.dev.synthetic import Scenario, generate

    cols = generate(Scenario(n_events=12_000, events_per_s=1_000, seed=3))
    table = pa.table({k: v for k, v in cols.items() if not k.startswith("_")})
    return tmp, d, profile, table


def test_windows_size_sets_the_windows_of_the_reports(synthetic):
    from monitor.replay import replay

    tmp, d, profile, table = synthetic
    spans = []
    for size in ("1m", "2m"):
        dd = copy.deepcopy(d)
        dd["windows"]["size"] = size
        cfg = from_dict(dd, base_dir=tmp, env={})
        spans.append({r.window_end_ms - r.window_start_ms for r in replay(cfg, profile, table)})
    assert spans == [{MIN}, {2 * MIN}]


def test_reference_profile_is_the_profile_the_monitor_compares_against(synthetic, tmp_path):
    from monitor.profile import build_profile, save_profile

    tmp, d, profile, table = synthetic
    # another profile of the same features (one that does not fit is refused: test_profile_fit)
    other = build_profile(from_dict(d, base_dir=tmp, env={}), tmp_path / "t.parquet",
                          table=table)
    save_profile(other, tmp_path / "other.profile")
    ids = []
    for path in (tmp / "ref.profile", tmp_path / "other.profile"):
        dd = copy.deepcopy(d)
        dd["reference"]["profile"] = str(path)
        ids.append(load_profile(from_dict(dd, base_dir=tmp, env={})).profile_id)
    assert ids == [profile.profile_id, other.profile_id] and ids[0] != ids[1]
    dd = copy.deepcopy(d)
    dd["reference"]["profile"] = str(tmp_path / "missing.profile")
    with pytest.raises(StreamdriftError, match=r"^reference.profile: no profile at "):
        load_profile(from_dict(dd, base_dir=tmp, env={}))


def test_volume_baseline_windows_is_how_far_back_the_volume_looks():
    from monitor.stage2.aggregate import ClosedWindow
    from tests.test_quality import window
    from tests.test_quality import config as quality_config

    rng = np.random.default_rng(0)
    profile = ReferenceProfile.build(
        numeric={"x": rng.normal(size=20_000), "y": rng.lognormal(size=20_000)},
        categorical={"c": rng.choice(["a", "b", "c"], 20_000).astype(object)}, n_bins=100)
    # a quiet night (500 a window) after a busy day (2,000): the last 3 windows say 2,000
    # is a spike, the last 12 (mostly busy) say it is normal
    w: ClosedWindow = window(profile, n=2000, recent=(2000,) * 9 + (500,) * 3)
    short = Evaluator(quality_config(volume_baseline_windows=3), profile).report(w)
    long = Evaluator(quality_config(volume_baseline_windows=12), profile).report(w)
    flagged = [{c.check for c in r.checks if c.flagged and c.check.startswith("volume")}
               for r in (short, long)]
    assert flagged == [{"volume_spike"}, set()]


# -- alerts ----------------------------------------------------------------------------------

def _alerts(cfg, effects, check="ks", family="numeric_drift", feature="x"):
    policy = policy_from_config(cfg)
    out = []
    for i, e in enumerate(effects):
        c = CheckResult(check=check, family=family, feature=feature, statistic=e,
                        p_value=1e-12 if e else 0.5, effect_size=e, n_window=10_000,
                        n_reference=100_000, sufficient=True)
        r = WindowReport(cfg.monitor, i * MIN, (i + 1) * MIN, "p", 10_000, 0, 0, [0], {}, [c],
                         False, "0")
        out.append([(a.kind, a.reason) for a in policy.update(r).alerts])
    return out


def test_repeat_interval_decides_when_a_firing_alert_is_repeated():
    effects = [0.3] * 6
    hourly = _alerts(cfg_of(alerts={"confirm_windows": 1}), effects)
    often = _alerts(cfg_of(alerts={"confirm_windows": 1, "repeat_interval": "3m"}), effects)
    assert [w for w in hourly if w] == [[("firing", "new")]]
    assert often[3] == [("update", "repeat")] and hourly[3] == []


@pytest.mark.parametrize("key, covered, spared", [
    ("check", {"check": "ks"}, {"check": "psi"}),
    ("family", {"family": "numeric_drift"}, {"family": "quality", "check": "null_rate"}),
])
def test_silence_check_and_family_choose_what_is_held_back(key, covered, spared):
    silence = {"reason": "backfill", key: covered[key]}
    cfg = cfg_of(alerts={"confirm_windows": 1, "silences": [silence]})
    assert _alerts(cfg, [0.3, 0.3], **covered) == [[], []]
    assert _alerts(cfg, [0.3, 0.3], **spared)[0][0][0] == "firing"
    assert _alerts(cfg_of(alerts={"confirm_windows": 1}), [0.3], **covered)[0][0][0] == "firing"


def test_silence_reason_is_shown_on_the_status_page():
    from monitor.web.history import History
    from monitor.web.status import StatusPage

    pages = []
    for reason in ("backfill of march", "vendor outage"):
        cfg = cfg_of(alerts={"silences": [{"reason": reason, "feature": "x"}]})
        page = StatusPage(History(), None, lambda cfg=cfg: list(cfg.alerts.silences))
        pages.append(page._alerts(full=False))  # the "Alerts & silences" view
    assert "backfill of march" in pages[0] and "vendor outage" not in pages[0]
    assert "vendor outage" in pages[1]


# -- schema registry credentials --------------------------------------------------------------

def test_registry_password_file_and_token_env_reach_the_request_headers(tmp_path):
    import base64

    (tmp_path / "pw").write_text("s3cret\n")
    reg = {"monitor": "m", "kafka": {"bootstrap": "k:9092"},
           "stream": {"topic": "t", "format": "avro", "schema_registry_url": "http://r:8081"},
           "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
           "reference": {"profile": "/r"}}

    def headers(registry: dict, env: dict) -> dict:
        d = copy.deepcopy(reg)
        d["stream"]["schema_registry"] = registry
        return registry_options(from_dict(d, base_dir=tmp_path, env={}), env)["headers"]

    basic = headers({"username": "sd", "password_file": "pw"}, {})
    assert basic == {"Authorization": "Basic " + base64.b64encode(b"sd:s3cret").decode()}
    assert headers({"username": "other", "password_file": "pw"}, {}) != basic
    assert headers({"token_env": "REG_TOKEN"}, {"REG_TOKEN": "tok-1"}) == \
        {"Authorization": "Bearer tok-1"}
    assert headers({}, {}) == {}


# -- Slack -----------------------------------------------------------------------------------

@pytest.fixture()
def slack():
    s = SlackServer(token=TOKEN).start()
    yield s
    s.stop()


def _slack_sink(slack_section: dict, tmp_path: Path, env: dict | None = None):
    cfg = from_dict(base(slack=slack_section), base_dir=tmp_path, env={})
    (delivery,) = make_sinks(cfg, NO_BROKER)
    delivery.close()
    return delivery.sink


def _fast(sink):
    for k, v in (("timeout_s", 1.0), ("rejected_retry_s", 0.1)):
        if hasattr(sink, k):
            setattr(sink, k, v)
    return sink


@pytest.mark.parametrize("where", ["token_env", "token_file"])
def test_slack_token_is_what_the_sink_authenticates_with(slack, tmp_path, monkeypatch, where):
    (tmp_path / "good").write_text(TOKEN + "\n")
    (tmp_path / "bad").write_text("xoxb-not-the-token\n")
    monkeypatch.setenv("GOOD_TOKEN", TOKEN)
    monkeypatch.setenv("BAD_TOKEN", "xoxb-not-the-token")
    good, bad = ("GOOD_TOKEN", "BAD_TOKEN") if where == "token_env" else ("good", "bad")
    section = {"channel": "#ml-oncall", "base_url": slack.base_url}
    sink = _fast(_slack_sink({**section, where: good}, tmp_path))
    deliver_all(sink, ALERTS[:1])
    assert len(slack.top_level()) == 1
    sink = _fast(_slack_sink({**section, where: bad}, tmp_path))
    with pytest.raises(SinkUnavailable):
        sink.write(ALERTS[1:2])
    assert len(slack.top_level()) == 1 and sink.health.failing


def test_slack_channel_and_runbook_url_shape_the_message(slack, tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_TOKEN", TOKEN)
    for channel, runbook in (("#ml-oncall", "https://wiki.example.com/a/{monitor}"),
                             ("#other", "https://runbooks.example.org/{feature}")):
        sink = _fast(_slack_sink({"channel": channel, "base_url": slack.base_url,
                                  "token_env": "SLACK_TOKEN", "runbook_url": runbook},
                                 tmp_path))
        deliver_all(sink, ALERTS[:1])
    a, b = slack.top_level("C0ONCALL"), slack.top_level("C0OTHER")
    assert len(a) == 1 and len(b) == 1
    assert "wiki.example.com/a/loan-default" in str(a[0].blocks)
    assert "runbooks.example.org/" in str(b[0].blocks) and "wiki.example.com" not in \
        str(b[0].blocks)


@pytest.mark.parametrize("where", ["webhook_url_env", "webhook_url_file"])
def test_slack_webhook_url_is_where_the_sink_posts(slack, tmp_path, monkeypatch, where):
    (tmp_path / "hook").write_text(slack.webhook_url + "\n")
    (tmp_path / "wrong").write_text(slack.webhook_url + "-wrong\n")
    monkeypatch.setenv("HOOK", slack.webhook_url)
    monkeypatch.setenv("WRONG", slack.webhook_url + "-wrong")
    good, wrong = ("HOOK", "WRONG") if where == "webhook_url_env" else ("hook", "wrong")
    sink = _fast(_slack_sink({"channel": "#ml-oncall", where: good}, tmp_path))
    deliver_all(sink, ALERTS[:1])
    assert len(slack.webhook_posts) == 1
    sink = _fast(_slack_sink({"channel": "#ml-oncall", where: wrong}, tmp_path))
    with pytest.raises(SinkUnavailable):
        sink.write(ALERTS[1:2])
    assert len(slack.webhook_posts) == 1


# -- generic webhooks and Alertmanager --------------------------------------------------------

@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.stop()


def _webhook(hook: dict, tmp_path: Path):
    cfg = from_dict(base(webhooks=[hook]), base_dir=tmp_path, env={})
    (delivery,) = make_sinks(cfg, NO_BROKER)
    delivery.close()
    return delivery


@pytest.mark.parametrize("where", ["url", "url_env"])
def test_webhook_url_is_where_alerts_go(receiver, tmp_path, monkeypatch, where):
    monkeypatch.setenv("HOOK_A", receiver.url + "/a")
    monkeypatch.setenv("HOOK_B", receiver.url + "/b")
    for x in ("a", "b"):
        value = receiver.url + f"/{x}" if where == "url" else f"HOOK_{x.upper()}"
        _webhook({"name": "ops", where: value}, tmp_path).sink.write(ALERTS[:1])
    assert [p for p, _, _, _ in receiver.got] == ["/hooks/streamdrift/a", "/hooks/streamdrift/b"]


def test_webhook_name_names_the_sink_and_its_group(tmp_path):
    a = _webhook({"name": "ops", "url": "http://127.0.0.1:1/x"}, tmp_path)
    b = _webhook({"name": "pager", "url": "http://127.0.0.1:1/x"}, tmp_path)
    assert (a.sink.name, a.group_id) == ("ops", "streamdrift-loan-ops")
    assert (b.sink.name, b.group_id) == ("pager", "streamdrift-loan-pager")


@pytest.mark.parametrize("where", ["signing_secret_env", "signing_secret_file"])
def test_webhook_signing_secret_signs_each_post(receiver, tmp_path, monkeypatch, where):
    sigs = []
    for secret in ("whsec-one", "whsec-two"):
        monkeypatch.setenv("SIGN", secret)
        (tmp_path / "sign").write_text(secret + "\n")
        value = "SIGN" if where == "signing_secret_env" else "sign"
        _webhook({"name": "ops", "url": receiver.url, where: value},
                 tmp_path).sink.write(ALERTS[:1])
        _, headers, body, _ = receiver.got[-1]
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Streamdrift-Signature"] == want
        sigs.append(headers["X-Streamdrift-Signature"])
    assert sigs[0] != sigs[1]
    _webhook({"name": "ops", "url": receiver.url}, tmp_path).sink.write(ALERTS[:1])
    assert "X-Streamdrift-Signature" not in receiver.got[-1][1]


@pytest.mark.parametrize("sink", ["webhook", "alertmanager"])
def test_timeout_is_how_long_a_sink_waits_for_an_answer(tmp_path, sink):
    slow = Receiver(delay_s=1.5)
    try:
        outcomes = []
        for timeout in ("300ms", "5s"):
            section = ({"webhooks": [{"name": "ops", "url": slow.url, "timeout": timeout}]}
                       if sink == "webhook" else
                       {"alertmanager": {"url": slow.url.rsplit("/", 1)[0],
                                         "timeout": timeout}})
            cfg = from_dict(base(**section), base_dir=tmp_path, env={})
            (delivery,) = make_sinks(cfg, NO_BROKER)
            delivery.close()
            s = delivery.sink
            for k in ("retries", "attempts"):
                if hasattr(s, k):
                    setattr(s, k, 0 if k == "retries" else 1)
            try:
                s.write(ALERTS[:1])
                outcomes.append("sent")
            except SinkUnavailable:
                outcomes.append("timed out")
            finally:
                getattr(s, "close", lambda: None)()
        assert outcomes == ["timed out", "sent"]
    finally:
        slow.stop()


# -- prediction ------------------------------------------------------------------------------

@pytest.mark.parametrize("native", [True, False])
def test_positive_class_and_label_decide_what_counts_as_positive(native):
    from monitor.stage1.decode import Decoder

    msgs = [b'{"score": 0.9, "decision": "approve", "outcome": "repaid"}',
            b'{"score": 0.1, "decision": "reject", "outcome": "default"}']
    got = []
    for cls, label in (("approve", "default"), ("reject", "repaid")):
        cfg = cfg_of(prediction={"score": "score", "class": "decision", "label": "outcome",
                                 "positive_class": cls, "positive_label": label})
        b = Decoder(cfg, {"c": []}, [], native=native).decode(
            msgs, np.arange(2), np.array([5, 6])).batch
        got.append((b.prediction.tolist(), b.label.tolist()))
    assert got == [([1, 0], [0, 1]), ([0, 1], [1, 0])]


# -- kafka -----------------------------------------------------------------------------------

def test_session_timeout_is_how_long_unacknowledged_writes_wait_before_health_fails(
        monkeypatch):
    from monitor.checked_producer import DELIVERY_STATS
    from monitor.pipeline import _kafka_wait_check

    monkeypatch.setitem(DELIVERY_STATS.waiting_since, "knob-test", time.monotonic() - 8)
    short = _kafka_wait_check(cfg_of(kafka={"bootstrap": "k:1", "session_timeout_ms": 5000}))
    long = _kafka_wait_check(cfg_of(kafka={"bootstrap": "k:1", "session_timeout_ms": 30000}))
    assert short()["kafka"].startswith("writes unacknowledged for ") and long() == {}


# -- output ----------------------------------------------------------------------------------

def test_reports_jsonl_is_where_stage_2_appends_its_committed_reports(tmp_path):
    from monitor.pipeline import make_stage2

    class NoSilences:
        def current(self) -> list:
            return []

    rng = np.random.default_rng(0)
    profile = ReferenceProfile.build(numeric={"x": rng.normal(size=1000)},
                                     categorical={"c": np.array(["a", "b"] * 500, object)})
    report = WindowReport("loan", 0, MIN, "p", 10, 0, 0, [0], {}, [], False, "0")
    files = []
    for out in ({}, {"reports_jsonl": "a.jsonl"}, {"reports_jsonl": "b.jsonl"}):
        cfg = from_dict(base(output=out), base_dir=tmp_path, env={})
        _, runner = make_stage2(cfg, profile, NO_BROKER, NoSilences())
        try:
            if runner.report_file is not None:
                runner.report_file.write([report])  # what the runner does after a commit
            files.append(sorted(p.name for p in tmp_path.glob("*.jsonl")))
        finally:
            runner.store.close()
    assert files == [[], ["a.jsonl"], ["a.jsonl", "b.jsonl"]]
    assert orjson.loads((tmp_path / "b.jsonl").read_bytes())["window_end_ms"] == MIN
