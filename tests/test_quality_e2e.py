"""Data-quality faults injected at known windows, against the real broker: each raises
exactly its own alert in its own window, nothing else fires, and every rate in the reports is
the exact count computed here from the produced events."""

from __future__ import annotations

import time
import uuid

import numpy as np
import orjson
import pytest
from confluent_kafka import Consumer

from kernels.quality import QualityBounds
from monitor.dev.synthetic import Fault, Scenario
from tests.e2e_harness import (
    START_MS, MonitorProcess, ReportReader, build_reference, config_dict, create_topic,
    produce, write_config,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

W = 2000  # window, ms
RATE = 1000  # events per second of event time: 2,000 events per window
N_WINDOWS = 20
GARBAGE = 300


def window(i: int) -> tuple[int, int]:
    return START_MS + i * W, START_MS + (i + 1) * W


# window index -> (fault, the one alert key "check/feature" it must raise)
FAULTS = {
    4: (Fault("debt_ratio", "null", *window(4)), "null_rate/debt_ratio"),
    6: (Fault("income", "x1000", *window(6)), "out_of_range_rate/income"),
    8: (Fault("channel", "category_flood", *window(8)), "unseen_rate/channel"),
    10: (Fault("utilization", "rename", *window(10)), "schema_change/*"),
    12: (Fault("*", "silence", *window(12)), "no_data/*"),
    14: (Fault("*", "duplicate", *window(14), share=0.3), "duplicate_rate/*"),
    16: (None, "bad_event_rate/*"),  # a burst of garbage messages
    18: (None, "stale_event_rate/*"),  # events enter Kafka 10 minutes after their time
}
DELAY_MS = 1000  # the usual delay between an event and its Kafka timestamp


def ingest_delay(ts):
    late = (ts >= window(18)[0]) & (ts < window(18)[1])
    return np.where(late, 600_000, DELAY_MS)


@pytest.fixture(scope="module")
def fault_run(kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality")
    # Kafka timestamps from January: no time-based retention may touch them
    topic = create_topic(kafka_bootstrap, 4, {"retention.ms": "-1"})
    d = config_dict(tmp, kafka_bootstrap, topic, size=W, min_events=500)
    d["checks"] = {**d["checks"], "quality": {"max_event_delay": "1m"}}
    cfg, profile = build_reference(tmp, d)
    path = write_config(tmp, d)
    scen = Scenario(n_events=N_WINDOWS * W * RATE // 1000, events_per_s=RATE, seed=21,
                    faults=tuple(f for f, _ in FAULTS.values() if f is not None))
    garbage = [b"\x00garbage %d" % i for i in range(GARBAGE)]
    # the burst: one garbage message after each of 300 events of window 16 (the silenced
    # window 12 removed 2,000 events and the duplicates added 600 before it), from its 40th
    # event on, when every partition has seen window 16 open
    first16 = 16 * W * RATE // 1000 - 2000 + 600 + 40
    produced = produce(kafka_bootstrap, topic, scen, garbage=garbage, garbage_every=1,
                       garbage_from=first16, key_by_id=True, ingest_delay_ms=ingest_delay)
    mon = MonitorProcess(path, tmp / "monitor.log")
    reader = ReportReader(kafka_bootstrap, cfg.topics.reports)
    end = START_MS + N_WINDOWS * W
    try:
        reports = reader.wait_for(N_WINDOWS, 300, procs=[mon], before_ms=end)
        alerts = _read_alerts(kafka_bootstrap, cfg.topics.alerts, end)
    finally:
        mon.stop()
        reader.close()
    assert "Traceback" not in (tmp / "monitor.log").read_text()
    return cfg, profile, produced, reports, alerts


def _read_alerts(bootstrap: str, topic: str, end_ms: int) -> list[dict]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"a-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    out: list[dict] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = [m for m in c.consume(500, timeout=1.0) if m.error() is None]
        out += [orjson.loads(m.value()) for m in got]
        if any(a["window_start_ms"] >= end_ms - W for a in out) and not got:
            break
    c.close()
    return [a for a in out if a["window_start_ms"] < end_ms]


def _flagged(r: dict) -> set[str]:
    return {f"{c['check']}/{c['feature']}" for c in r["checks"] if c["flagged"]}


def test_each_fault_raises_exactly_its_own_alert_in_its_window(fault_run):
    _, _, _, reports, _ = fault_run
    starts = sorted(reports)
    assert starts == [window(i)[0] for i in range(N_WINDOWS)]
    for i, s in enumerate(starts):
        want = {FAULTS[i][1]} if i in FAULTS else set()
        assert _flagged(reports[s]) == want, (i, [c for c in reports[s]["checks"]
                                                  if c["flagged"]])


def test_alerts_topic_fires_each_fault_once_and_resolves_it(fault_run):
    _, _, _, _, alerts = fault_run
    firing = {}
    for a in alerts:
        if a["kind"] == "firing":
            for item in a["items"]:
                firing.setdefault(item["check"] + "/" + item["feature"], []).append(
                    (a["window_start_ms"] - START_MS) // W)
    assert firing == {key: [i] for i, (_, key) in FAULTS.items()}
    resolved = {item["check"] + "/" + item["feature"]
                for a in alerts if a["kind"] == "resolved" for item in a["items"]}
    assert resolved == {key for _, key in FAULTS.values()}


def _check(r: dict, check: str, feature: str) -> dict:
    return next(c for c in r["checks"] if c["check"] == check and c["feature"] == feature)


def test_every_rate_is_the_exact_count_of_the_produced_events(fault_run):
    cfg, profile, produced, reports, _ = fault_run
    cols = produced.cols
    t = cols["ts"]
    start = t - t % W
    seen: set[str] = set()
    first = np.zeros(t.size, bool)  # the first copy of each id (in produce order)
    for i, e in enumerate(cols["event_id"].tolist()):
        first[i] = e not in seen
        seen.add(e)
    bounds = QualityBounds.from_profile(profile)
    income = profile.numeric_names.index("income")
    for s, r in reports.items():
        here = (start == s) & first
        n = int(here.sum())
        assert (r["events"], r["late_events"]) == (n, 0), (
            (s - START_MS) // W, {(w - START_MS) // W: (x["events"], x["quality"]["duplicates"])
                                  for w, x in reports.items()})
        dups = int(((start == s) & ~first).sum())
        assert r["quality"]["duplicates"] == dups
        c = _check(r, "duplicate_rate", "*")
        assert (c["detail"]["count"], c["n_window"]) == (dups, n + dups)
        assert _check(r, "no_data", "*")["effect_size"] == (1.0 if n == 0 else 0.0)
        if n == 0:  # the silent window: no sketch, no per-field figures
            assert not [c for c in r["checks"] if c["feature"] not in ("*",)]
            continue
        nulls = int(np.isnan(cols["debt_ratio"][here]).sum())
        c = _check(r, "null_rate", "debt_ratio")
        assert (c["detail"]["count"], c["n_window"]) == (nulls, n)
        x = cols["income"][here]
        out = int(((x < bounds.range_lo[income]) | (x > bounds.range_hi[income])).sum())
        c = _check(r, "out_of_range_rate", "income")
        assert (c["detail"]["count"], c["n_window"]) == (out, n)
        unseen = int((cols["channel"][here] == "unknown-partner").sum())
        assert _check(r, "unseen_rate", "channel")["detail"]["unseen"] == unseen
        gone = int(cols["_missing:utilization"][here].sum())
        assert r["quality"]["fields"]["utilization"]["missing"] == gone
        # schema samples: the events at offsets divisible by 64
        sampled = int((here & (produced.offset % 64 == 0)).sum())
        renamed = int((here & (produced.offset % 64 == 0) & cols["_missing:utilization"]).sum())
        assert r["quality"]["schema"]["sampled"] == sampled
        assert r["quality"]["schema"]["new_fields"] == (
            {"utilization_v2": renamed} if renamed else {})
        c = _check(r, "bad_event_rate", "*")
        assert c["n_window"] == n + r["bad_events"]
        # freshness: Kafka timestamp - event time, per event
        delay = ingest_delay(t[here])
        c = _check(r, "stale_event_rate", "*")
        assert (c["detail"]["count"], c["n_window"]) == (int((delay > 60_000).sum()), n)
        assert r["quality"]["delay"] == {"events": n, "stale": int((delay > 60_000).sum()),
                                         "sum_ms": int(delay.sum()), "max_ms": int(delay.max())}
    assert sum(r["bad_events"] for r in reports.values()) == GARBAGE
    assert reports[window(16)[0]]["bad_events"] == GARBAGE
