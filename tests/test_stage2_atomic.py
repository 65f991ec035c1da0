"""Stage 2's step is one Kafka transaction (issue 11, finding 3), against the real broker.

The old stage 2 advanced its tables and then published: a report Kafka refused (or a broker
outage past 30 s, or a silences file that failed to parse) lost the window for good. Here the
reports topic refuses the step's report (its ``max.message.bytes`` is too small): nothing of
the step becomes visible — no state, no report, no alert — and once the topic is fixed the
same message commits and the window is reported exactly once. A second instance with the
same transactional id fences the first one (a zombie worker cannot commit)."""

from __future__ import annotations

import uuid

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from monitor.stage2.state import StepNotCommitted, TransactionalState
from tests.test_stage2_step import messages, new_runner
from tests.test_stage2_step import run as reference_run

pytestmark = pytest.mark.kafka


def _read(bootstrap: str, topic: str) -> list[dict]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                  "enable.partition.eof": True, "isolation.level": "read_committed"})
    c.assign([TopicPartition(topic, 0, 0)])
    out, done = [], False
    while not done:
        for m in c.consume(100, timeout=5.0) or [None]:
            if m is None:
                raise AssertionError(f"{topic} not read to its end")
            if m.error() is None:
                out.append(orjson.loads(m.value()))
            elif m.error().code() == m.error()._PARTITION_EOF:
                done = True
    c.close()
    return out


def _store(bootstrap, topics, tid) -> TransactionalState:
    return TransactionalState({"bootstrap.servers": bootstrap}, state_topic=topics["state"],
                              reports_topic=topics["reports"], alerts_topic=topics["alerts"],
                              transactional_id=tid, timeout_s=10.0)


def _runner(store: TransactionalState):
    return new_runner(store)  # the stand-in evaluator and a real AlertPolicy


@pytest.fixture()
def topics(topic_factory):
    return {"state": topic_factory(1, "s2state", {"cleanup.policy": "compact"}),
            "reports": topic_factory(1, "s2reports", {"max.message.bytes": "300"}),
            "alerts": topic_factory(1, "s2alerts")}


def test_a_refused_report_commits_nothing_and_goes_out_once_fixed(kafka_bootstrap, topics):
    tid = f"s2-{uuid.uuid4().hex[:8]}"
    runner = _runner(_store(kafka_bootstrap, topics, tid))
    msgs = list(enumerate(messages()))
    for offset, value in msgs[:3]:  # window 0 is not complete yet: no report
        runner.handle(offset, value)
    offset, value = msgs[3]  # closes window 0: its report is too large for the topic
    for _ in range(2):
        with pytest.raises(StepNotCommitted):
            runner.handle(offset, value)
        runner.invalidate()
    fresh = _store(kafka_bootstrap, topics, tid).load()  # what a restart would find
    assert fresh.doc["offset"] == 2 and fresh.doc["meta"].get("next_window") == 0
    assert _read(kafka_bootstrap, topics["reports"]) == []
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, topics["reports"], incremental_configs=[
        ConfigEntry("max.message.bytes", "1000000",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(30)
    for offset, value in msgs[3:]:
        try:
            runner.handle(offset, value)
        except StepNotCommitted:  # the broker may take a moment to apply the new limit
            runner.invalidate()
            runner.handle(offset, value)
    reports = _read(kafka_bootstrap, topics["reports"])
    assert reports == reference_run().reports
    alerts = _read(kafka_bootstrap, topics["alerts"])
    assert [(a["kind"], a["window_start_ms"]) for a in alerts] == [("firing", 20),
                                                                   ("resolved", 50)]


def test_a_restarted_worker_continues_from_the_committed_state(kafka_bootstrap, topics,
                                                                topic_factory):
    topics["reports"] = topic_factory(1, "s2reports")
    tid = f"s2-{uuid.uuid4().hex[:8]}"
    msgs = list(enumerate(messages()))
    first = _runner(_store(kafka_bootstrap, topics, tid))
    for offset, value in msgs[:13]:  # the alert fires at window 2 (closed by message 11)
        first.handle(offset, value)
    # a new worker (a new process: fresh objects) fences the old one and takes over
    second = _runner(_store(kafka_bootstrap, topics, tid))
    for offset, value in msgs[10:]:  # Faust re-delivers from before the last commit
        second.handle(offset, value)
    with pytest.raises(StepNotCommitted):  # the old worker is a zombie now
        first.handle(*msgs[13])
    reports = _read(kafka_bootstrap, topics["reports"])
    assert [r["window_start_ms"] for r in reports] == list(range(0, 80, 10))
    alerts = _read(kafka_bootstrap, topics["alerts"])
    assert [(a["kind"], a["window_start_ms"]) for a in alerts] == [("firing", 20),
                                                                   ("resolved", 50)]
    assert alerts[1]["thread_alert_id"] == alerts[0]["alert_id"]
    # the same reports as a run without the takeover: the rolling reference (in each
    # check's n_reference) and the volume baseline (detail) came back from the state topic
    assert reports == reference_run().reports
