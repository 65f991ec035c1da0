"""Finding 5: an event time far in the future is a bad message (``future_event_time``),
counted and dead-lettered; it must not move the watermark (which made stage 2 walk every
empty window up to year 9999 until MemoryError). ``stream.max_future_skew`` sets how far
ahead of its Kafka timestamp an event may be."""

from __future__ import annotations

import time

import numpy as np
import pytest
from confluent_kafka import Consumer, Producer

from monitor.config import from_dict
from monitor.stage1.decode import Decoder
from monitor.stage1.event_time import FUTURE_EVENT_TIME, reject_future
from tests.e2e_harness import (
    START_MS,
    WINDOW_MS,
    ReportReader,
    config_dict,
)
from tests.faults.harness import Monitor, setup

HOUR = 3_600_000
YEAR_9999 = 253_402_300_799_000


def _decoded(tmp_path, skew: str):
    d = config_dict(tmp_path, "127.0.0.1:1", "t")
    d["stream"]["max_future_skew"] = skew
    cfg = from_dict(d, base_dir=tmp_path, env={})
    dec = Decoder(cfg, {n: ["x"] for n in cfg.features.categorical}, ["36-50"])
    ts = [START_MS, START_MS + 2 * HOUR, YEAR_9999]
    values = [f'{{"ts": {t}, "event_id": "{i}"}}'.encode() for i, t in enumerate(ts)]
    kafka_ts = np.full(3, START_MS, np.int64)
    out = dec.decode(values, np.arange(3, dtype=np.int64), kafka_ts)
    return cfg, reject_future(out, kafka_ts, cfg.stream.max_future_skew_ms)


def test_max_future_skew_decides_which_events_are_too_far_ahead(tmp_path):
    cfg, out = _decoded(tmp_path, "1h")
    assert cfg.stream.max_future_skew_ms == HOUR
    assert [(b.offset, b.reason) for b in out.bad] == [(1, FUTURE_EVENT_TIME),
                                                       (2, FUTURE_EVENT_TIME)]
    assert out.batch.offset.tolist() == [0]
    _, out = _decoded(tmp_path, "3h")  # the same events, a wider skew: only 9999 is bad
    assert [(b.offset, b.reason) for b in out.bad] == [(2, FUTURE_EVENT_TIME)]
    assert out.batch.offset.tolist() == [0, 1]


@pytest.mark.kafka
@pytest.mark.slow
def test_an_event_in_year_9999_is_dead_lettered_and_windows_go_on(kafka_bootstrap, tmp_path):
    s = setup(tmp_path, kafka_bootstrap, idle_timeout=600_000)
    p = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    n = 4 * WINDOW_MS // 10  # 4 windows, one event per 10 ms, on every partition
    for part in range(4):
        for i in range(n):
            t = START_MS + i * 10
            if i == n // 2:  # Kafka timestamp now-ish in event time, the event in 9999
                p.produce(s.topic, f'{{"ts": {YEAR_9999}, "event_id": "far"}}'.encode(),
                          partition=part, timestamp=t)
            p.produce(s.topic, f'{{"ts": {t}, "event_id": "{part}-{i}"}}'.encode(),
                      partition=part, timestamp=t)
    assert p.flush(60) == 0
    mon = Monitor(s, tmp_path / "m.log")
    reader = ReportReader(kafka_bootstrap, s.cfg.topics.reports)
    try:
        got = reader.wait_for(3, 400, procs=[mon], before_ms=START_MS + 3 * WINDOW_MS)
        time.sleep(3)  # what a 9999 watermark would close, it would have closed by now
        reader.poll(2)
        assert mon.alive()
    finally:
        mon.stop()
        reader.close()
    assert sorted(reader.copies) == [START_MS + k * WINDOW_MS for k in range(3)]
    assert [got[w]["events"] for w in sorted(got)] == [4 * WINDOW_MS // 10] * 3
    bad = {}
    for r in got.values():
        for k, v in r["quality"]["bad_by_reason"].items():
            bad[k] = bad.get(k, 0) + v
    assert bad == {FUTURE_EVENT_TIME: 4}
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "dlq-future",
                  "auto.offset.reset": "earliest"})
    c.subscribe([s.cfg.topics.dead_letter])
    dead, deadline = [], time.monotonic() + 30
    while len(dead) < 4 and time.monotonic() < deadline:
        dead += [m for m in c.consume(100, timeout=1.0) if m.error() is None]
    c.close()
    assert [dict(m.headers())["streamdrift.reason"] for m in dead] == \
        [FUTURE_EVENT_TIME.encode()] * 4


@pytest.mark.parametrize("skew, future", [("1h", 5), ("3h", 0)])
def test_replay_marks_far_future_event_times_bad_as_the_live_path_does(tmp_path, skew, future):
    """``streamdrift replay`` applies ``stream.max_future_skew`` too: 5 events 2 h ahead of
    their ``_timestamp`` are ``future_event_time`` with a 1 h skew (counted, every other event
    in its window) and good with a 3 h skew (the first one then moves the watermark 2 h ahead:
    windows there, the rest of the stream late)."""
    import pyarrow as pa

    from monitor.dev.synthetic import Scenario, generate
    from monitor.replay import replay
    from tests.e2e_harness import build_reference

    d = config_dict(tmp_path, "127.0.0.1:1", "t")
    d["stream"]["max_future_skew"] = skew
    cfg, profile = build_reference(tmp_path, d, n=20_000)
    cols = generate(Scenario(n_events=9_000, events_per_s=1_000, seed=7,
                             start_ms=START_MS))
    t = pa.table({k: v for k, v in cols.items() if not k.startswith("_")})
    ts = t.column("ts").to_numpy().astype(np.int64)
    ahead = np.arange(500, 9_000, 1_700)  # 5 rows
    event_ts = ts.copy()
    event_ts[ahead] += 2 * HOUR
    t = t.set_column(t.column_names.index("ts"), "ts", pa.array(event_ts)) \
        .append_column("_timestamp", pa.array(ts))
    reports = list(replay(cfg, profile, t, progress=False))
    bad = sum(r.quality.get("bad_by_reason", {}).get(FUTURE_EVENT_TIME, 0) for r in reports)
    assert bad == future
    far = [r for r in reports if r.window_start_ms >= START_MS + HOUR]
    if future:
        assert sum(r.events for r in reports) == 9_000 - future
        assert [r.window_start_ms for r in reports] == [START_MS + k * WINDOW_MS
                                                        for k in range(3)]
        assert far == []
    else:
        assert far and sum(r.events for r in reports) < 9_000
