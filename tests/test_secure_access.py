"""Clear errors against the real SASL_SSL broker: wrong password, untrusted certificate,
hostname mismatch, each missing ACL, topic-policy drift — one line each, at start."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from monitor.access import missing_access, needs, principal
from monitor.check import check
from monitor.config import from_dict, kafka_client_config
from monitor.topics import ensure_topics
from tests.e2e_harness import ROOT, build_reference, create_topic, write_config
from tests.secure_harness import (
    PASSWORD_ENV,
    monitor_grants,
    secret_env,
    secure_config,
    with_kafka,
)

pytestmark = [pytest.mark.kafka]


@pytest.fixture(scope="module")
def granted(secure_kafka, tmp_path_factory):
    """A config whose user has exactly the ACLs it needs, and whose topics exist."""
    broker = secure_kafka
    tmp = tmp_path_factory.mktemp("access")
    topic = create_topic(broker.bootstrap, 2, client=broker.admin_config)
    d = secure_config(tmp, broker, topic, password_from="env")
    cfg, _ = build_reference(tmp, d, n=5000)
    ensure_topics(cfg, broker.admin_config)
    broker.allow("monitor", monitor_grants(cfg))
    return broker, tmp, d


@pytest.fixture()
def env(granted, monkeypatch):
    for k, v in secret_env(granted[0]).items():
        monkeypatch.setenv(k, v)


def _check(d: dict, tmp) -> list[str]:
    lines: list[str] = []
    check(from_dict(d, base_dir=tmp), say=lines.append)
    return [x for x in lines if x.startswith("PROBLEM")]


def test_check_passes_with_exactly_the_needed_acls(granted, env):
    broker, tmp, d = granted
    lines: list[str] = []
    assert check(from_dict(d, base_dir=tmp), say=lines.append) == 0, lines
    assert "as User:monitor (SASL_SSL, SCRAM-SHA-512)" in lines[0]


def test_wrong_password_names_the_setting(granted, env, monkeypatch):
    broker, tmp, d = granted
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    problems = _check(d, tmp)
    assert len(problems) == 1 and "kafka.sasl.password_env" in problems[0]
    assert "refused user 'monitor'" in problems[0] and "not-the-password" not in problems[0]


def test_untrusted_certificate_names_the_ca_setting(granted, env):
    broker, tmp, d = granted
    bad = with_kafka(d, tls={**d["kafka"]["tls"], "ca_file": str(broker.tls.other_ca)})
    problems = _check(bad, tmp)
    assert len(problems) == 1 and problems[0].startswith("PROBLEM  kafka.tls.ca_file:")
    assert "not trusted" in problems[0]


def test_hostname_mismatch_names_the_host(granted, env):
    broker, tmp, d = granted
    bad = with_kafka(d, bootstrap=broker.bootstrap.replace("127.0.0.1", "localhost"))
    problems = _check(bad, tmp)
    assert len(problems) == 1 and "hostname mismatch" in problems[0]
    assert "'localhost'" in problems[0] and "kafka.bootstrap" in problems[0]


def test_each_missing_acl_is_one_line_naming_the_resource_and_the_grant(granted, env):
    broker, tmp, d = granted
    cfg = from_dict(d, base_dir=tmp)
    admin = AdminClient(kafka_client_config(cfg))
    grants = monitor_grants(cfg)
    # transactional ids cannot be asked about with describe: the preflight skips them
    resources = sorted({(n.kind, n.name) for n in needs(cfg) if n.kind in ("topic", "group")})
    prefixed = {n.name for n in needs(cfg) if n.pattern == "prefixed"}
    assert any("assignor" in n.why for n in needs(cfg))  # Faust's topic is in the list
    assert any(n.name == cfg.topics.stage2_state for n in needs(cfg))  # stage 2's state
    for kind, name in resources:
        mine = [g for g in grants if (g[0], g[1]) == (kind, name)]
        broker.deny("monitor", mine)
        try:
            what = f"{kind}s prefixed" if name in prefixed else kind
            want = {f"may not {n.operation} {what} '{name}'" for n in needs(cfg)
                    if (n.kind, n.name) == (kind, name)}
            deadline = time.monotonic() + 10  # ACL changes reach the authorizer in ms
            while True:
                problems, _ = missing_access(cfg, admin)
                hit = [p for p in problems if f"{what} '{name}'" in p]
                if len(hit) == len(want) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert len(problems) == len(want) == len(hit), (kind, name, problems)
            for line, w in zip(sorted(hit), sorted(want)):
                assert w in line and "\n" not in line
                assert "--allow-principal User:monitor --operation" in line
                assert f"--{kind} {name}" in line
        finally:
            broker.allow("monitor", mine)


def _run(cfg_path, env: dict, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor.cli", "run", "-c", str(cfg_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_run_stops_at_start_with_one_line_for_a_bad_password_or_a_missing_acl(granted):
    import os

    broker, tmp, d = granted
    path = write_config(tmp, d)
    env = {**os.environ, **secret_env(broker), PASSWORD_ENV: "wrong"}
    p = _run(path, env)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0, p.stderr
    assert p.stderr.startswith("streamdrift: kafka.sasl.password_env: the broker refused")
    cfg = from_dict(d, base_dir=tmp)
    reports = [g for g in monitor_grants(cfg) if g[1] == cfg.topics.reports and g[3] == "write"]
    broker.deny("monitor", reports)
    try:
        time.sleep(0.5)
        p = _run(path, {**os.environ, **secret_env(broker)})
    finally:
        broker.allow("monitor", reports)
    assert p.returncode == 2, p.stderr[-2000:]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert f"may not WRITE topic '{cfg.topics.reports}'" in lines[0]
    assert broker.users["monitor"] not in p.stderr + p.stdout


def test_check_reports_topic_policy_drift(granted, env):
    broker, tmp, d = granted
    cfg = from_dict(d, base_dir=tmp)
    admin = AdminClient(broker.admin_config)
    res = ConfigResource("topic", cfg.topics.reports, incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result()
    broker.allow("monitor", [("topic", cfg.topics.reports, "literal", "describe_configs")])
    try:
        deadline = time.monotonic() + 10
        while True:
            problems = _check(d, tmp)
            if problems or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    finally:
        res = ConfigResource("topic", cfg.topics.reports, incremental_configs=[
            ConfigEntry("retention.ms", str(cfg.topics.reports_retention_ms),
                        incremental_operation=AlterConfigOpType.SET)])
        for f in admin.incremental_alter_configs([res]).values():
            f.result()
    assert len(problems) == 1, problems
    assert f"topic '{cfg.topics.reports}' (reports): retention.ms=1000, wanted " \
           f"{cfg.topics.reports_retention_ms}" in problems[0]


def test_wrong_tls_key_password_names_the_setting(granted, env, tmp_path):
    broker, tmp, d = granted
    (tmp_path / "kp").write_text("not-the-key-password")
    bad = with_kafka(d, tls={**d["kafka"]["tls"], "key_password_file": str(tmp_path / "kp")})
    problems = _check(bad, tmp)
    assert len(problems) == 1, problems
    assert problems[0].startswith("PROBLEM  kafka.tls.key_password_file: cannot load")
    assert "not-the-key-password" not in problems[0]


def test_mutual_tls_alone_connects_as_the_certificate_subject(granted, env):
    broker, tmp, d = granted
    tls = {k: v for k, v in d["kafka"]["tls"].items()}
    mtls = {**d, "kafka": {"bootstrap": broker.ssl_bootstrap, "security_protocol": "SSL",
                           "session_timeout_ms": 6000, "tls": tls}}
    cfg = from_dict(mtls, base_dir=tmp)
    assert principal(cfg) == "User:CN=streamdrift-client"
    before = _check(mtls, tmp)  # connected, but this principal has no ACL at all
    assert before and all("User:CN=streamdrift-client may not" in p for p in before)
    broker.allow("CN=streamdrift-client", monitor_grants(cfg))
    deadline = time.monotonic() + 10
    while (after := _check(mtls, tmp)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert after == []


def test_streamdrift_check_command_exit_codes(granted):
    import os

    broker, tmp, d = granted
    path = write_config(tmp, d)
    env = {**os.environ, **secret_env(broker)}
    ok = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "-c", str(path)],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().endswith("streamdrift check: all good")
    bad = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "-c", str(path)],
                         cwd=ROOT, env={**env, PASSWORD_ENV: "bad-pw-x1"}, capture_output=True,
                         text=True, timeout=90)
    assert bad.returncode == 1
    assert "PROBLEM  kafka.sasl.password_env" in bad.stdout and "bad-pw-x1" not in bad.stdout
