"""Retraining triggers: policy, schemas (JSON + Avro), and a training-job process on Kafka."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import fastavro
import jsonschema
import orjson
import pytest

from monitor.records import Alert, CheckResult, WindowReport
from monitor.sinks.delivery import AlertDelivery
from monitor.sinks.trigger import Trigger, TriggerPolicy, TriggerSink, idempotency_key
from monitor.stage2.alerts import AlertPolicy

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "retraining-trigger.schema.json").read_text())
AVRO = fastavro.parse_schema(json.loads((ROOT / "schemas" / "retraining-trigger.avsc").read_text()))
MIN = 60_000


def alerts_for(monitor: str, effects: dict[str, list[float]], families=None,
               versions: list[str] | None = None) -> list[Alert]:
    policy = AlertPolicy(confirm_windows=2, resolve_windows=2, repeat_interval_ms=2 * MIN)
    out = []
    n = len(next(iter(effects.values())))
    for i in range(n):
        checks = [CheckResult(check="chi2" if f.startswith("c") else "ks",
                              family=(families or {}).get(f, "numeric_drift"), feature=f,
                              statistic=e[i], p_value=1e-9 if e[i] else 0.5, effect_size=e[i],
                              n_window=5000, n_reference=50_000, sufficient=True)
                  for f, e in effects.items()]
        out += policy.update(WindowReport(
            monitor, i * MIN, (i + 1) * MIN, f"{monitor}-prof", 5000, 0, 0, [0], {}, checks,
            False, "0.1.0", model_version=versions[i] if versions else "unversioned")).alerts
    return out


EFFECTS = {
    "age": [0, .15, .15, .3, .3, .3, .3, .3, .3, 0, 0, 0, .3, .3, .3, 0, 0, 0],     # warning, then critical
    "income": [0, .3, .3, .3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],            # critical at once
    "missing_rate": [0, .5, .5, .5, .5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],     # quality: pages only
}
FAMILIES = {"missing_rate": "quality"}


def test_policy_severity_confirmation_cooldown_and_families():
    alerts = alerts_for("loan", EFFECTS, FAMILIES)
    p = TriggerPolicy(on="critical", confirm_windows=2, cooldown_ms=5 * MIN)
    triggers = [t for a in alerts if (t := p.decide(a, "loan-model"))]
    # window 2: income critical for 2 windows -> trigger; age's escalation at window 3 falls in
    # the cooldown; age's repeat at window 7 comes after it -> trigger; age re-fires at window
    # 13 -> trigger
    assert [(t.window_end_ms // MIN, t.reason["features"]) for t in triggers] == \
        [(3, ["income"]), (8, ["age"]), (14, ["age"])]
    assert triggers[0].window_start_ms == 1 * MIN and triggers[0].severity == "critical"
    assert all("missing_rate" not in t.reason["features"] for t in triggers)
    warn = TriggerPolicy(on="warning", confirm_windows=2, cooldown_ms=0)
    assert {f for a in alerts if (t := warn.decide(a, "m")) for f in t.reason["features"]} == \
        {"age", "income"}
    late = TriggerPolicy(on="critical", confirm_windows=4, cooldown_ms=0)
    # income was bad for 3 windows only; age triggers on each repeat once bad for >= 4
    assert [t.window_end_ms // MIN for a in alerts if (t := late.decide(a, "m"))] == [6, 8, 10]


def test_trigger_matches_json_schema_and_avro_round_trip():
    alerts = alerts_for("loan", EFFECTS, FAMILIES)
    p = TriggerPolicy(on="warning", confirm_windows=1, cooldown_ms=0)
    triggers = [t for a in alerts if (t := p.decide(a, "loan-model"))]
    assert len(triggers) >= 3
    for t in triggers:
        d = json.loads(orjson.dumps(t.to_dict()))
        jsonschema.validate(d, SCHEMA)
        assert Trigger.from_dict(d) == t
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, AVRO, d)
        buf.seek(0)
        assert fastavro.schemaless_reader(buf, AVRO) == d
        assert t.idempotency_key == idempotency_key("loan-model:unversioned", t.alert_id)
        assert t.model_version == "unversioned" and d["model_version"] == "unversioned"
    # the two schemas name the same fields
    assert set(SCHEMA["properties"]) == {f["name"] for f in AVRO["fields"]}


def training_job_code() -> str:
    """The example of docs/triggers.md, with a schema check added after it decodes a value."""
    doc = (ROOT / "docs" / "triggers.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    hook = "trigger = json.loads(msg.value())"
    assert hook in code
    check = (hook + "\n        import jsonschema; jsonschema.validate(trigger, SCHEMA)"
             "\n        print('VALID', trigger['idempotency_key'], flush=True)")
    schema = f"import json\nSCHEMA = json.loads(open({str(ROOT / 'schemas/retraining-trigger.schema.json')!r}).read())\n"
    return schema + code.replace(hook, check)


@pytest.mark.kafka
def test_training_job_process_sees_each_trigger_once_after_dedup(
        kafka_bootstrap, topic_factory, produce, tmp_path):
    alerts_topic = topic_factory(1, prefix="alerts")
    trigger_topic = topic_factory(2, prefix="triggers")
    alerts = alerts_for("loan", EFFECTS, FAMILIES) + alerts_for("fraud", {"amount": EFFECTS["income"]})
    produce(alerts_topic, [a.to_dict() for a in alerts], key=b"m")
    conf = {"bootstrap.servers": kafka_bootstrap}

    def sink(restore: bool) -> TriggerSink:
        s = TriggerSink(conf, trigger_topic, TriggerPolicy("critical", 2, 5 * MIN),
                        model={"loan": "loan-model", "fraud": "fraud-model"})
        if restore:
            s.restore()
        return s

    first = sink(restore=True)
    loop = AlertDelivery({**conf, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
                         alerts_topic, "trigger-sink", first)
    assert loop.run(idle_exit_s=5.0) == len(alerts)
    expected = {t.idempotency_key for t in first.published}
    assert len(expected) == 4     # loan: income, age, age; fraud: amount
    # a restarted sink that rebuilt its cooldowns from the topic publishes nothing again...
    again = sink(restore=True)
    again.write(alerts)
    assert again.published == []
    # ...one that lost them (crash between the broker's ack and the offset commit, without
    # restore) publishes the same triggers again, with the same keys
    dup = sink(restore=False)
    dup.write(alerts)
    assert {t.idempotency_key for t in dup.published} == expected
    dup.close()

    env = {**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap, "TRIGGER_TOPIC": trigger_topic,
           "GROUP_ID": "training-job", "IDLE_EXIT_S": "8",
           "SEEN_KEYS_FILE": str(tmp_path / "seen.txt")}
    out = subprocess.run([sys.executable, "-c", training_job_code()], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    valid = [ln.split()[1] for ln in lines if ln.startswith("VALID")]
    retrained = [ln.split()[2] for ln in lines if ln.startswith("RETRAIN")]
    dups = [ln.split()[1] for ln in lines if ln.startswith("DUPLICATE")]
    assert len(valid) == 8 and sorted(valid) == sorted(retrained + dups)
    assert sorted(retrained) == sorted(expected) and sorted(dups) == sorted(expected)
    # keyed by model: each model's triggers in one partition
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({**conf, "group.id": "check-keys", "enable.auto.commit": False})
    c.assign([TopicPartition(trigger_topic, p, 0) for p in (0, 1)])
    seen: dict[str, set[int]] = {}
    for _ in range(60):
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.setdefault(m.key().decode(), set()).add(m.partition())
            assert dict(m.headers())["idempotency_key"].decode() == \
                orjson.loads(m.value())["idempotency_key"]
        if sum(len(v) for v in seen.values()) and len(seen) == 2 and m is None:
            break
    c.close()
    assert set(seen) == {"loan-model:unversioned", "fraud-model:unversioned"}
    assert all(len(v) == 1 for v in seen.values())


def test_a_new_model_version_has_its_own_cooldown_and_names_itself():
    """income is critical from window 1 on; the model moves from v1 to v2 at window 4. v1
    triggers at window 2; v2's keys start afresh (the v1 alert is closed as superseded) and
    trigger at window 5 although v1's cooldown (1 h) still runs."""
    versions = ["v1"] * 4 + ["v2"] * 4
    alerts = alerts_for("loan", {"income": [0] + [.3] * 7}, versions=versions)
    sup = [a for a in alerts if a.reason == "superseded"]
    assert len(sup) == 1 and sup[0].model_version == "v1" and sup[0].kind == "resolved"
    assert sup[0].items[0].key == "loan/loan:v1/ks/income"
    p = TriggerPolicy(on="critical", confirm_windows=2, cooldown_ms=60 * MIN)
    triggers = [t for a in alerts if (t := p.decide(a, "loan-model"))]
    assert [(t.model_version, t.topic_key, t.window_start_ms // MIN, t.window_end_ms // MIN)
            for t in triggers] == [("v1", "loan-model:v1", 1, 3), ("v2", "loan-model:v2", 4, 6)]
    assert triggers[1].reason["text"].startswith("loan-model:v2: ")
    assert triggers[1].statistics[0]["effect_size"] == .3


@pytest.mark.kafka
def test_triggers_are_keyed_and_cooled_down_per_model_version(kafka_bootstrap, topic_factory):
    """On the broker: v1's and v2's triggers carry keys loan-model:v1 / :v2; a sink restarted
    from the topic keeps both cooldowns (neither version publishes again) while a third
    version still triggers."""
    topic = topic_factory(2, prefix="triggers-versions")
    conf = {"bootstrap.servers": kafka_bootstrap}
    alerts = alerts_for("loan", {"income": [0] + [.3] * 7}, versions=["v1"] * 4 + ["v2"] * 4)
    first = TriggerSink(conf, topic, TriggerPolicy("critical", 2, 60 * MIN))
    first.write(alerts)
    first.close()
    assert [t.topic_key for t in first.published] == ["loan:v1", "loan:v2"]
    again = TriggerSink(conf, topic, TriggerPolicy("critical", 2, 60 * MIN))
    assert again.restore() == 2
    again.write(alerts)
    assert again.published == []
    v3 = alerts_for("loan", {"income": [0] + [.3] * 3}, versions=["v3"] * 4)
    again.write(v3)
    assert [t.topic_key for t in again.published] == ["loan:v3"]
    again.close()
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({**conf, "group.id": "check-version-keys", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
    keys = []
    for _ in range(40):
        m = c.poll(0.5)
        if m is not None and not m.error():
            keys.append((m.key().decode(), orjson.loads(m.value())["model_version"]))
        elif len(keys) == 3:
            break
    c.close()
    assert sorted(keys) == [("loan:v1", "v1"), ("loan:v2", "v2"), ("loan:v3", "v3")]
