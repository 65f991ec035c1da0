"""The monitor end to end against the real broker: topics -> sketches -> Faust -> reports."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from confluent_kafka import Consumer

from monitor.dev.synthetic import Scenario, Shift
from monitor.replay import replay
from tests.e2e_harness import (
    RATE,
    START_MS,
    WINDOW_MS,
    MonitorProcess,
    ReportReader,
    build_reference,
    comparable,
    config_dict,
    create_topic,
    expected_digests,
    expected_window_counts,
    produce,
    write_config,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N_EVENTS = 300_000
N_WINDOWS = N_EVENTS // (RATE * WINDOW_MS // 1000)  # 10 windows of 30,000 events
END_MS = START_MS + N_EVENTS * 1000 // RATE
ONSET_WINDOW = 5
SHIFTED = {"utilization", "savings"}  # neither feeds the synthetic model's score


def _checks_close(a: dict, b: dict) -> None:
    """Same checks, same verdicts; figures equal (floats to 1e-9 relative)."""
    assert [(c["check"], c["feature"]) for c in a["checks"]] == \
        [(c["check"], c["feature"]) for c in b["checks"]]
    for x, y in zip(a["checks"], b["checks"]):
        assert x["flagged"] == y["flagged"], (x, y)
        for k in ("statistic", "p_value", "effect_size"):
            if x[k] is None or y[k] is None:
                assert x[k] == y[k]
            else:
                assert math.isclose(x[k], y[k], rel_tol=1e-9, abs_tol=1e-12), (k, x, y)


@pytest.fixture()
def drift_run(kafka_bootstrap, tmp_path):
    topic = create_topic(kafka_bootstrap, 4)
    d = config_dict(tmp_path, kafka_bootstrap, topic)
    cfg, profile = build_reference(tmp_path, d)
    path = write_config(tmp_path, d)
    onset = START_MS + ONSET_WINDOW * WINDOW_MS
    scen = Scenario(n_events=N_EVENTS, events_per_s=RATE, seed=5,
                    shifts=tuple(Shift(f, onset, 0.3) for f in sorted(SHIFTED)))
    produced = produce(kafka_bootstrap, topic, scen)
    mon = MonitorProcess(path, tmp_path / "monitor.log")
    reader = ReportReader(kafka_bootstrap, cfg.topics.reports)
    try:
        reports = reader.wait_for(N_WINDOWS, 300, procs=[mon], before_ms=END_MS)
    finally:
        mon.stop()
        reader.close()
    return cfg, profile, produced, reports, reader


def test_mean_shift_flags_exactly_the_shifted_features_from_the_onset(drift_run):
    cfg, profile, produced, reports, _ = drift_run
    starts = sorted(reports)
    assert starts[0] == START_MS and len(starts) == N_WINDOWS
    counts = expected_window_counts(produced)
    for i, s in enumerate(starts):
        r = reports[s]
        assert r["events"] == counts[s] and r["late_events"] == 0 and r["bad_events"] == 0
        flagged = {c["feature"] for c in r["checks"] if c["flagged"]}
        if i < ONSET_WINDOW:
            assert flagged == set(), (i, [c for c in r["checks"] if c["flagged"]])
        elif i == ONSET_WINDOW:
            assert flagged == SHIFTED, (i, [c for c in r["checks"] if c["flagged"]])
            drift = {c["feature"] for c in r["checks"]
                     if c["flagged"] and c["family"] == "numeric_drift"}
            assert drift == SHIFTED


def test_replay_gives_the_same_reports(drift_run):
    cfg, profile, produced, reports, _ = drift_run
    replayed = {r.window_start_ms: r.to_dict() for r in replay(cfg, profile, produced.table())}
    assert sorted(replayed) == sorted(reports)
    for s in reports:
        a, b = comparable(reports[s]), comparable(replayed[s])
        for k in ("events", "late_events", "bad_events", "window_end_ms", "profile_id",
                  "sketch_digest", "insufficient_data"):
            assert a[k] == b[k], (s, k, a[k], b[k])
        _checks_close(a, b)


def test_histograms_equal_what_was_produced(drift_run):
    cfg, profile, produced, reports, _ = drift_run
    want = expected_digests(cfg, profile, produced)
    assert {s: r["sketch_digest"] for s, r in reports.items()} == want


# Crash safety (kill -9 at step boundaries and at random moments while events flow, two
# workers sharing the work from the first event, broker restarts) is tested in tests/faults/:
# the kill -9 and two-worker tests that stood here killed an idle monitor and let the second
# worker join after 9 of 10 windows (issue 11, finding 10).


GARBAGE_KINDS = [
    b"", b"{", b"not json at all", b"[1, 2, 3]", b"null", b"42", b'"a string"',
    b'{"event_id": "x"}',  # no event time
    b'{"ts": "yesterday", "income": 1}',  # unusable event time
    b"\xff\xfe\x00garbage", b'{"ts": 1767225600000, "income": 1', b"{}{}",
]


def test_malformed_messages_are_counted_dead_lettered_and_change_nothing(kafka_bootstrap,
                                                                         tmp_path):
    topic = create_topic(kafka_bootstrap, 4)
    d = config_dict(tmp_path, kafka_bootstrap, topic)
    cfg, profile = build_reference(tmp_path, d)
    path = write_config(tmp_path, d)
    garbage = [GARBAGE_KINDS[i % len(GARBAGE_KINDS)] for i in range(1000)]
    n = 150_000
    produced = produce(kafka_bootstrap, topic, Scenario(n_events=n, events_per_s=RATE, seed=8),
                       garbage=garbage, garbage_every=n // 1000 - 1)
    mon = MonitorProcess(path, tmp_path / "monitor.log")
    reader = ReportReader(kafka_bootstrap, cfg.topics.reports)
    try:
        got = reader.wait_for(n // (RATE * WINDOW_MS // 1000), 300, procs=[mon],
                              before_ms=START_MS + n * 1000 // RATE)
        assert mon.alive()
    finally:
        mon.stop()
        reader.close()
    # the process stayed up the whole time (wait_for checked it); a consumer-group rebalance
    # under load is allowed, a crash or restart is not
    assert "Traceback" not in (tmp_path / "monitor.log").read_text()
    by_reason: dict[str, int] = {}
    for r in got.values():
        for k, v in r["quality"]["bad_by_reason"].items():
            by_reason[k] = by_reason.get(k, 0) + v
    assert sum(by_reason.values()) == 1000
    assert by_reason.get("missing_event_time", 0) == garbage.count(b'{"event_id": "x"}')
    assert by_reason.get("bad_event_time", 0) == garbage.count(b'{"ts": "yesterday", "income": 1}')
    # the dead-letter topic holds every one of them, with the reason in the headers
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "dlq-check",
                  "auto.offset.reset": "earliest"})
    c.subscribe([cfg.topics.dead_letter])
    dead = []
    deadline = time.monotonic() + 60
    while len(dead) < 1000 and time.monotonic() < deadline:
        dead += [m for m in c.consume(1000, timeout=1.0) if m.error() is None]
    c.close()
    assert len(dead) == 1000
    reasons: dict[str, int] = {}
    for m in dead:
        h = dict(m.headers())
        reasons[h["streamdrift.reason"].decode()] = reasons.get(
            h["streamdrift.reason"].decode(), 0) + 1
    assert reasons == by_reason
    assert sorted(m.value() or b"" for m in dead) == sorted(garbage)
    # the windows' statistics are those of the good events alone
    clean = {r.window_start_ms: r.to_dict() for r in replay(cfg, profile, produced.table())}
    for s in got:
        a, b = got[s], clean[s]
        assert a["events"] == b["events"] and a["sketch_digest"] == b["sketch_digest"]
        drift = [c for c in a["checks"] if c["family"] != "quality"]
        drift_b = [c for c in b["checks"] if c["family"] != "quality"]
        _checks_close({"checks": drift}, {"checks": drift_b})


def test_out_of_order_and_late_events_land_in_their_window_or_the_late_counter(
        kafka_bootstrap, tmp_path):
    topic = create_topic(kafka_bootstrap, 4)
    d = config_dict(tmp_path, kafka_bootstrap, topic, allowed_lateness=300)
    cfg, profile = build_reference(tmp_path, d)
    path = write_config(tmp_path, d)
    n = 120_000
    produced = produce(kafka_bootstrap, topic,
                       Scenario(n_events=n, events_per_s=RATE, seed=9, jitter_ms=1500))
    mon = MonitorProcess(path, tmp_path / "monitor.log")
    reader = ReportReader(kafka_bootstrap, cfg.topics.reports)
    t = produced.cols["ts"]
    n_windows = len(np.unique(t - t % WINDOW_MS))
    try:
        got = reader.wait_for(n_windows, 300, procs=[mon], before_ms=int(t.max()) + 1)
    finally:
        mon.stop()
        reader.close()
    # a plain reference: per partition, in offset order, an event is late when its window
    # ended at or before (largest event time seen before it - allowed lateness)
    want_in: dict[int, int] = {}
    want_late: dict[int, int] = {}
    for p in range(4):
        idx = np.flatnonzero(produced.partition == p)
        idx = idx[np.argsort(produced.offset[idx])]
        seen = None
        for ts in t[idx].tolist():
            w = ts - ts % WINDOW_MS
            if seen is not None and w + WINDOW_MS <= seen - 300:
                o = seen - seen % WINDOW_MS
                want_late[o] = want_late.get(o, 0) + 1
            else:
                want_in[w] = want_in.get(w, 0) + 1
            seen = ts if seen is None else max(seen, ts)
    assert sum(want_late.values()) > 0  # the jitter really made late events
    assert {s: r["events"] for s, r in got.items()} == want_in
    assert {s: r["late_events"] for s, r in got.items() if r["late_events"]} == want_late
    assert sum(r["events"] + r["late_events"] for r in got.values()) == n
