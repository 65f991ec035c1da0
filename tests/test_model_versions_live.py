"""Model versions from an event field, live against the real broker: two partitions carry a
canary rollout (v1, then v1 and a drifted v2 side by side) with a few events of no usable
version. ``streamdrift run`` is killed hard (``os._exit``, as kill -9) right after stage 1
wrote a state whose outbox holds per-version partials not yet sent, or after stage 2 merged a
window's versions but before its tables moved on, then restarted. Every
(window, version) report equals replay's of the produced record (events, bad and late
counts, sketch digest, verdicts), every copy of a report is the same, and the dead-letter
topic holds exactly the events without a usable version, with their reasons."""

from __future__ import annotations

import time
import uuid

import numpy as np
import orjson
import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Producer

from monitor.dev.synthetic import Scenario, Shift, generate, to_json
from monitor.faults import EXIT_CODE
from monitor.replay import replay
from tests.e2e_harness import (MonitorProcess, ReportReader, build_reference, comparable,
                               config_dict, create_topic, write_config)

pytestmark = [pytest.mark.kafka]

START = 1_767_225_600_000
N = 36_000  # 2,000 events/s: 6,000 per 3 s window, 6 windows
BAD = {101: None, 5_003: 7, 20_002: "a/b", 33_001: None}  # index -> version sent


def _workload():
    base = generate(Scenario(n_events=N, events_per_s=2_000, seed=5))
    drifted = generate(Scenario(n_events=N, events_per_s=2_000, seed=6,
                                shifts=(Shift("income", START, 1.5),)))
    v2 = (np.arange(N) >= N // 2) & (np.arange(N) % 2 == 1)
    cols = {}
    for name, col in base.items():
        if not name.startswith("_"):
            col = col.copy()
            col[v2] = drifted[name][v2]
            cols[name] = col
    cols["model_version"] = np.where(v2, "v2", "v1").astype(object)
    for i, v in BAD.items():
        cols["model_version"][i] = v
    return cols


class VersionReports(ReportReader):
    """Every copy of every report, by (window, version)."""

    def poll(self, timeout: float = 1.0) -> None:
        for m in self.c.consume(1000, timeout=timeout):
            if m.error() is None:
                r = orjson.loads(m.value())
                self.copies.setdefault((r["window_start_ms"], r["model_version"]), []).append(r)


@pytest.mark.parametrize("fault", [
    "source.after_state:3",  # stage 1: state with per-version partials in its outbox stored
    "stage2.before_table_advance:4",  # stage 2: a window's versions merged, tables not moved
])
def test_versions_survive_a_hard_crash(kafka_bootstrap, tmp_path, fault):
    topic = create_topic(kafka_bootstrap, 2)
    d = {**config_dict(tmp_path, kafka_bootstrap, topic),
         "model": {"name": "churn", "version": "v1", "version_field": "model_version"}}
    cfg, profile = build_reference(tmp_path, d, n=20_000)
    path = write_config(tmp_path, d)
    cols = _workload()
    msgs = to_json(cols)
    part = np.arange(N) % 2
    offs = np.zeros(N, np.int64)
    for p in (0, 1):
        offs[part == p] = np.arange(int(np.sum(part == p)))
    prod = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20,
                     "enable.idempotence": True})
    for i, m in enumerate(msgs):
        prod.produce(topic, m, partition=int(part[i]))
        if i % 5000 == 0:
            prod.poll(0)
    assert prod.flush(60) == 0

    reader = VersionReports(kafka_bootstrap, cfg.topics.reports)
    crashed = MonitorProcess(path, tmp_path / "crash.log",
                             env={"STREAMDRIFT_FAULT": fault})
    assert crashed.proc.wait(180) == EXIT_CODE, (tmp_path / "crash.log").read_text()[-3000:]
    mon = MonitorProcess(path, tmp_path / "monitor.log")
    try:
        want_keys = {(START + w * 3000, v) for w in range(6) for v in ("v1", "v2")
                     if v == "v1" or w >= 3}
        deadline = time.monotonic() + 240
        while not want_keys <= set(reader.copies) and time.monotonic() < deadline:
            reader.poll()
            assert mon.alive(), (tmp_path / "monitor.log").read_text()[-3000:]
        reader.poll()
    finally:
        mon.stop()
        reader.close()
    if fault.startswith("source"):  # the restarted stage 1 sent the crashed one's outbox
        assert "re-published" in (tmp_path / "monitor.log").read_text()
    got = {k: v for k, v in reader.copies.items() if k[0] < START + 6 * 3000}
    assert set(got) == want_keys

    # replay of what was produced (an int version is bad_model_version like "a/b")
    mv = [v if isinstance(v, str) or v is None else "a/b" for v in cols["model_version"]]
    table = pa.table({**{k: v for k, v in cols.items() if k != "model_version"},
                      "model_version": pa.array(mv, pa.string()),
                      "_partition": part, "_offset": offs})
    replayed = {(r.window_start_ms, r.model_version): r.to_dict()
                for r in replay(cfg, profile, table)}
    assert set(replayed) == want_keys
    for k, copies in got.items():
        assert all(comparable(c) == comparable(copies[0]) for c in copies), k
        a, b = copies[0], replayed[k]
        for f in ("events", "late_events", "bad_events", "sketch_digest", "model",
                  "insufficient_data"):
            assert a[f] == b[f], (k, f, a[f], b[f])
        assert [(c["check"], c["feature"], c["flagged"]) for c in a["checks"]] == \
            [(c["check"], c["feature"], c["flagged"]) for c in b["checks"]]
    assert sum(got[k][0]["bad_events"] for k in got) == len(BAD)
    assert any(c["flagged"] and c["feature"] == "income" for k in got if k[1] == "v2"
               for c in got[k][0]["checks"])

    # the dead-letter topic: exactly the events without a usable version (a message
    # dead-lettered again after the crash is the same message)
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": uuid.uuid4().hex,
                  "auto.offset.reset": "earliest"})
    c.subscribe([cfg.topics.dead_letter])
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(seen) < len(BAD) and time.monotonic() < deadline:
        for m in c.consume(100, timeout=1):
            if m.error() is None:
                h = dict(m.headers())
                seen[h["streamdrift.source"].decode()] = h["streamdrift.reason"].decode()
    c.close()
    assert seen == {f"{topic}:{part[i]}:{offs[i]}": "missing_model_version" if v is None
                    else "bad_model_version" for i, v in BAD.items()}
