"""The monitor end to end through a SASL_SSL + SCRAM + ACL broker, and what leaves it.

Stage 1 runs with its password from an environment variable, stage 2 and the sinks with
theirs from a file (and the TLS key password the other way round), each as its own
``streamdrift run --stage`` process with only the ACLs :func:`monitor.access.needs` lists;
stage 1 is restarted once and restores its state. Alerts go to Slack (the real slack-sdk
against tests/slack_server.py, token from the environment) and to retraining triggers. Then
every output — every topic the monitor wrote, its logs, its metrics, its JSONL reports, the
Slack messages — is scanned for the test's secrets (Kafka passwords, TLS key passphrase,
Slack token), a planted e-mail address, the events' ids and raw feature values.
"""

from __future__ import annotations

import hashlib
import re
import time
import urllib.request

import orjson
import pytest

from monitor.dev.synthetic import Scenario, Shift
from monitor.topics import wanted_topics
from tests.e2e_harness import (
    RATE,
    START_MS,
    WINDOW_MS,
    MonitorProcess,
    ReportReader,
    build_reference,
    create_topic,
    expected_digests,
    expected_window_counts,
    produce,
    write_config,
)
from tests.secure_harness import monitor_grants, read_all, secret_env, secure_config
from tests.slack_server import SlackServer

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N_EVENTS = 120_000  # 4 windows of 30,000 events
N_WINDOWS = N_EVENTS // (RATE * WINDOW_MS // 1000)
END_MS = START_MS + N_EVENTS * 1000 // RATE
ONSET_WINDOW = 2
SHIFTED = {"utilization", "savings"}
PII = b"jane.doe@example.com"  # planted in the garbage: must not reach any output
SLACK_TOKEN = "xoxb-secured-e2e-7f3a9c"
GARBAGE = [b'{"email": "jane.doe@example.com", "ts": "soon"', b"not json",
           b'{"email": "jane.doe@example.com", "event_id": "x"}']


def test_monitor_runs_end_to_end_over_sasl_ssl_and_leaks_nothing(secure_kafka, tmp_path):
    broker = secure_kafka
    admin = broker.admin_config
    topic = create_topic(broker.bootstrap, 4, client=admin)
    d = secure_config(tmp_path, broker, topic, password_from="env")
    d["triggers"] = {"on": "warning", "confirm_windows": 1}
    d["dead_letter"] = {"payload": "hash", "retention": "2d"}
    d["output"] = {"reports_jsonl": str(tmp_path / "reports.jsonl")}
    slack = SlackServer(token=SLACK_TOKEN).start()
    d["slack"] = {"channel": "#ml-oncall", "token_env": "SD_TEST_SLACK_TOKEN",
                  "base_url": slack.base_url}
    cfg, profile = build_reference(tmp_path, d)
    broker.allow("monitor", monitor_grants(cfg))
    env_cfg = write_config(tmp_path, d)
    file_dir = tmp_path / "file"
    file_dir.mkdir()
    d_file = secure_config(tmp_path, broker, topic, password_from="file")
    d_file.update({k: d[k] for k in ("monitor", "triggers", "dead_letter", "output", "reference",
                                     "slack")})
    file_cfg = write_config(file_dir, d_file)
    onset = START_MS + ONSET_WINDOW * WINDOW_MS
    scen = Scenario(n_events=N_EVENTS, events_per_s=RATE, seed=11,
                    shifts=tuple(Shift(f, onset, 0.3) for f in sorted(SHIFTED)))
    garbage = [GARBAGE[i % len(GARBAGE)] for i in range(60)]
    produced = produce(broker.bootstrap, topic, scen, garbage=garbage,
                       garbage_every=N_EVENTS // 61, client=admin)
    secrets_env = secret_env(broker)
    logs = [tmp_path / "source.log", tmp_path / "aggregate.log", tmp_path / "sinks.log"]
    procs = [MonitorProcess(env_cfg, logs[0], "source", env={"SD_TEST_KAFKA_PASSWORD":
                                                              secrets_env["SD_TEST_KAFKA_PASSWORD"]}),
             MonitorProcess(file_cfg, logs[1], "aggregate",
                            env={"SD_TEST_KEY_PASSWORD": secrets_env["SD_TEST_KEY_PASSWORD"]}),
             MonitorProcess(file_cfg, logs[2], "sinks",
                            env={"SD_TEST_KEY_PASSWORD": secrets_env["SD_TEST_KEY_PASSWORD"],
                                 "SD_TEST_SLACK_TOKEN": SLACK_TOKEN})]
    reader = ReportReader(broker.bootstrap, cfg.topics.reports, client=admin)
    metrics = b""
    seen_by_page: list[int] = []
    try:
        reports = reader.wait_for(N_WINDOWS, 240, procs=procs, before_ms=END_MS)
        procs[0].stop()  # stage 1 restarts: its state comes back through the ACL'd topic
        procs[0] = MonitorProcess(env_cfg, logs[0], "source", env={
            "SD_TEST_KAFKA_PASSWORD": secrets_env["SD_TEST_KAFKA_PASSWORD"]})
        deadline = time.monotonic() + 60
        while b"restored state for [0, 1, 2, 3]" not in logs[0].read_bytes():
            assert procs[0].alive() and time.monotonic() < deadline, logs[0].read_text()[-3000:]
            time.sleep(0.5)
        deadline = time.monotonic() + 60  # the trigger and the Slack message follow the alert
        while time.monotonic() < deadline and not (slack.top_level("C0ONCALL") and read_all(
                admin, [cfg.topics.triggers])[cfg.topics.triggers]):
            time.sleep(1)
        for log in logs:
            urls = re.findall(rb"metrics at (http://[\d.]+:\d+/metrics)", log.read_bytes())
            if urls:  # the last start's
                metrics += urllib.request.urlopen(urls[-1].decode(), timeout=5).read()
                # each process's status page reads reports and alerts through its ACLs
                version_url = urls[-1].decode().replace("/metrics", "/status/version")
                seen_by_page.append(orjson.loads(urllib.request.urlopen(
                    version_url, timeout=5).read())["version"])
    finally:
        for p in procs:
            p.stop()
        reader.close()
        slack.stop()

    # drift and exactly-once counts, as in the plaintext e2e test
    counts = expected_window_counts(produced)
    digests = expected_digests(cfg, profile, produced)
    assert sorted(reports) == sorted(counts)
    for i, s in enumerate(sorted(reports)):
        r = reports[s]
        assert r["events"] == counts[s] and r["sketch_digest"] == digests[s]
        flagged = {c["feature"] for c in r["checks"] if c["flagged"]
                   and c["family"] == "numeric_drift"}
        assert flagged == (set() if i < ONSET_WINDOW else SHIFTED) or i > ONSET_WINDOW, (i, flagged)
    assert sum(r["bad_events"] for r in reports.values()) == len(garbage)

    names = [p.name for p in wanted_topics(cfg)]
    out = read_all(admin, names + [topic])
    source = out.pop(topic)  # the scan's positive control: the planted data is really there
    assert sum(PII in (m.value() or b"") for m in source) == 40
    assert any(e.encode() in b"".join(m.value() for m in source[:100])
               for e in produced.cols["event_id"][:400])
    assert out[cfg.topics.alerts], "no alert was published"
    assert out[cfg.topics.triggers], "no retraining trigger was published"
    # dead letter: every bad message, as its hash (dead_letter.payload: hash)
    dead = out[cfg.topics.dead_letter]
    assert sorted(m.value() for m in dead) == sorted(
        b"sha256:" + hashlib.sha256(g).hexdigest().encode() for g in garbage)
    assert {dict(m.headers())["streamdrift.payload"] for m in dead} == {b"hash"}
    # the policies the monitor created its topics with
    assert metrics, "no /metrics scraped"
    assert len(seen_by_page) == 3 and min(seen_by_page) > 0, seen_by_page

    # nothing secret, raw or identifying left the process
    blobs = {f"topic {t}": b"\n".join((m.key() or b"") + b" " + (m.value() or b"") + b" "
                                      + repr(m.headers()).encode() for m in ms)
             for t, ms in out.items()}
    blobs.update({f"log {p.name}": p.read_bytes() for p in logs})
    blobs["metrics"] = metrics
    blobs["reports.jsonl"] = (tmp_path / "reports.jsonl").read_bytes()
    assert slack.top_level("C0ONCALL"), "no alert reached Slack"
    blobs["slack messages"] = repr([(m.text, m.blocks, m.metadata) for m in slack.messages]
                                   ).encode()
    secrets = [broker.users["monitor"], broker.tls.client_key_password, broker.admin_password,
               SLACK_TOKEN]
    for where, blob in blobs.items():
        for s in secrets:
            assert s.encode() not in blob, f"a secret leaked into {where}"
        assert PII not in blob, f"the planted e-mail address leaked into {where}"
    ids = [e.encode() for e in produced.cols["event_id"][::97]]
    texts = {k: v for k, v in blobs.items() if not k.startswith(("topic " + cfg.topics.state,
                                                                 "topic " + cfg.topics.partials))
             and "changelog" not in k}  # binary sketches: scanned for secrets above
    for where, blob in texts.items():
        assert not [i for i in ids if i in blob], f"event ids leaked into {where}"
    values = {repr(float(v)).encode() for f in SHIFTED for v in produced.cols[f][::211]}
    for where, blob in texts.items():
        leaked = [v for v in values if len(v) > 8 and v in blob]
        assert not leaked, f"raw feature values leaked into {where}: {leaked[:3]}"
    for r in reports.values():
        orjson.dumps(r)  # plain JSON
