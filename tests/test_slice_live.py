"""Drift and quality per slice on the live path, against the real broker: ``streamdrift run``
(stage 1 counts per slice inside the window sketches, partials, stage 2 merges and judges)
over two partitions. A shift confined to ``channel=store`` (a feature and the score) and nulls confined to
``channel=other`` raise alerts naming those slices on the alerts topic, nothing else fires,
and every slice check of every window equals the replay of the same events (whose figures
tests/test_slice_drift.py holds against numpy / scipy on the slice rows)."""

from __future__ import annotations

import time
import uuid

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer

from monitor.config import from_dict
from monitor.profile import build_profile, save_profile
from monitor.replay import replay
from monitor.stage2.slices import build_reference, write_reference
from tests.e2e_harness import (START_MS, MonitorProcess, ReportReader, config_dict,
                               create_topic, write_config)
from tests.test_slice_drift import DRIFT_FROM, DRIFTED, PER_WINDOW, WINDOW, rows, table

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N = 7  # windows


def _alerts(bootstrap: str, topic: str) -> list[dict]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"a-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    out: list[dict] = []
    deadline, idle = time.monotonic() + 30, 0
    while time.monotonic() < deadline and idle < 3:
        got = [m for m in c.consume(500, timeout=1.0) if m.error() is None]
        idle = 0 if got else idle + 1
        out += [orjson.loads(m.value()) for m in got]
    c.close()
    return out


@pytest.fixture(scope="module")
def live_run(kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slices-live")
    topic = create_topic(kafka_bootstrap, 2, {"retention.ms": "-1"})
    d = config_dict(tmp, kafka_bootstrap, topic, size=WINDOW, min_events=500)
    d.pop("sensitive")
    d["prediction"] = {"score": "score"}
    d["stream"].pop("event_id_field")
    d["features"] = {"numeric": ["x", "y"], "categorical": ["channel", "state"]}
    d["slices"] = {"keys": ["channel", "state"], "top_k": 3, "min_size": 300}
    cfg = from_dict(d, base_dir=tmp, env={})
    rng = np.random.default_rng(7)
    train = table([rows(rng, 40_000, 0, False)])
    pq.write_table(train, tmp / "train.parquet")
    profile = build_profile(cfg, tmp / "train.parquet", table=train)
    save_profile(profile, cfg.reference.profile)
    write_reference(cfg.reference.profile, profile, build_reference(cfg, profile, train))
    live = table([rows(rng, PER_WINDOW, START_MS + i * WINDOW, i >= DRIFT_FROM)
                  for i in range(N)])
    p = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20,
                  "enable.idempotence": True})
    for i, r in enumerate(live.to_pylist()):
        p.produce(topic, orjson.dumps(r), partition=i % 2)
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    mon = MonitorProcess(write_config(tmp, d), tmp / "monitor.log")
    reader = ReportReader(kafka_bootstrap, cfg.topics.reports)
    try:
        reports = reader.wait_for(N, 300, procs=[mon], before_ms=START_MS + N * WINDOW)
        alerts = _alerts(kafka_bootstrap, cfg.topics.alerts)
    finally:
        mon.stop()
        reader.close()
    assert "Traceback" not in (tmp / "monitor.log").read_text()
    replayed = {r.window_start_ms: r.to_dict() for r in replay(cfg, profile, live)}
    return reports, alerts, replayed


def _slice_checks(r: dict) -> dict:
    return {(c["check"], c["feature"]): (c["statistic"], c["p_value"], c["n_window"],
                                         c["flagged"])
            for c in r["checks"] if "@" in c["feature"]}


def test_live_slice_checks_equal_the_replay_and_only_the_drifted_slices_flag(live_run):
    reports, _, replayed = live_run
    assert sorted(reports) == sorted(replayed)
    for i, (start, r) in enumerate(sorted(reports.items())):
        live = _slice_checks(r)
        assert live and live == _slice_checks(replayed[start]), start
        assert r["quality"]["slices"] == replayed[start]["quality"]["slices"]
        flagged = {(c["check"], c["feature"]) for c in r["checks"] if c["flagged"]}
        want = DRIFTED if i >= DRIFT_FROM else set()
        assert flagged == want, (i, flagged)


def test_alerts_name_the_slice(live_run):
    _, alerts, _ = live_run
    items = [(i["check"], i["feature"], i["detail"].get("slice"))
             for a in alerts if a["kind"] == "firing" for i in a["items"]]
    assert set(items) == {(c, f, f.split("@")[1]) for c, f in DRIFTED}
