"""The live label stream against the real broker: predictions and labels on two topics (labels
delayed at random up to ``labels.max_delay``), stage 1 and stage 2 in their own processes, each
killed with SIGKILL once in between. Per window and slice of the final revision every count
equals the exact join of what the test produced, the figures equal scikit-learn's on the
joined rows (AUC within its stated bound), label fairness equals fairlearn's; a degradation in
one slice from a known time alerts in its windows naming that slice, the other slices stay
quiet, and the alert names the model version. Both topics have a third partition that never
carries a prediction (nor a label): it must not hold the judgement (the alerts) back."""

from __future__ import annotations

import math
import time

import numpy as np
import orjson
import pytest
from confluent_kafka import Consumer, Producer

from monitor.dev.labelled import labelled_stream
from tests.e2e_harness import MonitorProcess, create_topic, write_config
from tests.reference_performance import (FAIRNESS_ORACLES, PERFORMANCE_ORACLES, ece_numpy,
                                        rows_of)
from tests.test_replay_labels import AGES, CHANNELS, STATE_P, STATES, cli, files
from tests.test_replay_labels import config as replay_config

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WINDOW, MAX_DELAY = 10_000, 20_000
START = 1_767_225_600_000  # a multiple of WINDOW
DEGRADE_AT = START + 20_000  # slice "app" (code 1) from the third window on
STEADY = {"channel=web", "channel=store", "channel=other"}
N = 9000  # 45 s of prediction time at 200 / s: windows 0..3 are judged, 4 is the tail


def config(tmp, bootstrap, preds, labels) -> dict:
    d = replay_config(tmp)
    d["monitor"] = f"labels-live-{preds[-6:]}"
    d["kafka"] = {"bootstrap": bootstrap, "session_timeout_ms": 6000}
    d["stream"].update(topic=preds, snapshot_interval="1s")
    d["windows"].update(idle_timeout="2s", min_events=100)
    d["labels"]["topic"] = labels
    d["alerts"] = {"confirm_windows": 1, "resolve_windows": 1}
    d["http"] = {"host": "127.0.0.1", "port": 0}
    return d


def send(p: Producer, topic: str, rows: list[tuple[int, bytes]]) -> None:
    for part, value in rows:
        while True:
            try:
                p.produce(topic, value, partition=part)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0


def read_all(bootstrap: str, topic: str, stop, timeout_s: float, procs=()) -> list[dict]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{topic}-{time.time()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not stop(out):
            for m in c.consume(500, timeout=1.0):
                if m.error() is None:
                    out.append(orjson.loads(m.value()))
            for pr in procs:
                assert pr.alive(), pr.log.read_text()[-3000:]
    finally:
        c.close()
    return out


def dead_letters(bootstrap: str, topic: str) -> set[str]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"d-{time.time()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    reasons: set[str] = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(reasons) < 2:
        for m in c.consume(100, timeout=1.0):
            if m.error() is None:
                reasons.add(dict(m.headers())["streamdrift.reason"].decode())
    c.close()
    return reasons


def test_live_labels_with_a_restart_of_each_stage(kafka_bootstrap, tmp_path):
    # 3 partitions, the data in 0 and 1 only: partition 2 stays empty
    preds_topic = create_topic(kafka_bootstrap, 3)
    labels_topic = create_topic(kafka_bootstrap, 3)
    d = config(tmp_path, kafka_bootstrap, preds_topic, labels_topic)
    path = write_config(tmp_path, d)
    files(tmp_path, "train", 1, n=20_000)  # the replay test's reference
    cli("profile", "build", "-c", str(path), "--input", str(tmp_path / "train.parquet"),
        "--labels", str(tmp_path / "train-labels.parquet"), "-o", str(tmp_path / "ref.profile"))

    p, lab = labelled_stream(n=N, seed=5, events_per_s=200, start_ms=START,
                             max_delay_ms=MAX_DELAY, n_slices=4, n_groups=2, partitions=2,
                             slice_p=[0.4, 0.3, 0.2, 0.1], degraded_slice=1,
                             degrade_at_ms=DEGRADE_AT)
    rng = np.random.default_rng(3)
    p["state"] = rng.choice(4, N, p=STATE_P)
    pred_msgs = [(int(p["partition"][i]), orjson.dumps({
        "event_id": f"e{int(p['id'][i])}", "ts": int(p["time"][i]), "x": float(rng.normal()),
        "channel": str(CHANNELS[p["slice"][i]]), "state": str(STATES[p["state"][i]]),
        "age": str(AGES[p["group"][i]]),
        "score": float(p["score"][i])})) for i in range(N)]
    label_msgs = [(int(lab["partition"][i]), orjson.dumps({
        "event_id": f"e{int(lab['id'][i])}", "churned": int(lab["label"][i]),
        "known_at": int(lab["time"][i])})) for i in range(N)]

    prod = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 10})

    garbage = [(0, b'{"event_id": "e1", "churned'),  # Arrow refuses the batch: slow path
               (1, orjson.dumps({"event_id": None, "churned": 1, "known_at": START}))]

    def feed(lo_ms: int, hi_ms: int, extra=()) -> None:
        """Both topics in arrival order (prediction time / label time) over [lo, hi)."""
        send(prod, preds_topic, [m for m, t in zip(pred_msgs, p["time"]) if lo_ms <= t < hi_ms])
        send(prod, labels_topic, [*extra, *(m for m, t in zip(label_msgs, lab["time"])
                                            if lo_ms <= t < hi_ms)])

    src = MonitorProcess(path, tmp_path / "source.log", stage="source")
    agg = MonitorProcess(path, tmp_path / "aggregate.log", stage="aggregate")
    cfg_reports = f"{d['monitor']}-reports"
    try:
        feed(START - WINDOW, START + 20_000, garbage)

        def perf(out):  # some performance reports committed: state exists on both sides
            return sum(1 for r in out if r.get("kind") == "performance") >= 2

        from monitor.config import from_dict

        cfg = from_dict(d, base_dir=tmp_path, env={})
        cfg_reports = cfg.topics.reports
        read_all(kafka_bootstrap, cfg_reports, perf, 90, [src, agg])
        src.kill9()
        feed(START + 20_000, START + 40_000)
        src = MonitorProcess(path, tmp_path / "source.log", stage="source")
        time.sleep(8)
        agg.kill9()
        agg = MonitorProcess(path, tmp_path / "aggregate.log", stage="aggregate")
        feed(START + 40_000, START + 10 * WINDOW)  # the rest, labels to the last

        judged = [START + k * WINDOW for k in range(4)]

        def done(out):
            fin = {r["window_start_ms"] for r in out
                   if r.get("kind") == "performance" and r["final"]}
            return set(judged) <= fin

        reports = read_all(kafka_bootstrap, cfg_reports, done, 120, [src, agg])
        alerts = read_all(kafka_bootstrap, cfg.topics.alerts, lambda o: False, 3)
        dead = dead_letters(kafka_bootstrap, cfg.topics.dead_letter)
    finally:
        src.stop()
        agg.stop()

    # bad labels: counted and dead-lettered with their reason, the join goes on
    assert dead == {"label_malformed", "label_missing_id"}
    latest: dict[int, dict] = {}
    for r in reports:
        if r.get("kind") == "performance":
            w = r["window_start_ms"]
            if r["revision"] >= latest.get(w, {}).get("revision", -1):
                latest[w] = r
    assert set(judged) <= set(latest)
    value = {"channel": CHANNELS[p["slice"]], "state": STATES[p["state"]]}
    other = {"channel": {"kiosk"}, "state": {"WA"}}
    fair_checked = 0
    for w in judged:
        r = latest[w]
        assert r["final"] and r["model"] == {"name": "churn", "version": "v7"}
        assert list(r["slices"]) == ["channel=web", "channel=app", "channel=store",
                                     "channel=other", "state=CA", "state=NY", "state=TX",
                                     "state=other"]
        inw = (p["time"] >= w) & (p["time"] < w + WINDOW)
        for name, got in [("*", r["overall"]), *r["slices"].items()]:
            m = inw.copy()
            if name != "*":
                key, v = name.split("=")
                m &= np.isin(value[key], list(other[key]) if v == "other" else [v])
            # every prediction counted once, every label joined once, none expired
            assert (got["predictions"], got["labelled"], got["expired"]) == \
                (m.sum(), m.sum(), 0), (w, name)
            y, s = p["label"][m], p["score"][m]
            pred = (s >= 0.5).astype(np.int8)
            for fig, (kind, oracle) in PERFORMANCE_ORACLES.items():
                want = oracle(*rows_of(kind, y, pred, s))
                if fig == "auc":
                    assert abs(got["auc"] - want) <= got["auc_error_bound"] + 1e-12
                elif not math.isnan(want):
                    assert got[fig] == pytest.approx(want, rel=1e-9), (w, name, fig)
            ece, *_ = ece_numpy(y.astype(int), s, len(got["reliability"]))
            assert got["ece"] == pytest.approx(ece, rel=1e-9), (w, name)
            fair = r["fairness"] if name == "*" else got.get("fairness", {})
            if "equalized_odds_difference" in fair:
                fair_checked += 1
                for fig, oracle in FAIRNESS_ORACLES.items():
                    want = oracle(y, pred, sensitive_features=AGES[p["group"][m]])
                    assert fair[fig] == pytest.approx(want, rel=1e-9), (w, name, fig)
        # the degradation: channel=app from its window on; the other channels stay quiet
        # (the degraded rows are a share of every state's slice: those may show too)
        bad = {(x["slice"], x["check"]) for x in r["findings"] if x["alert"]}
        if w >= DEGRADE_AT:
            assert ("channel=app", "accuracy_drop") in bad, (w, bad)
            assert not {s for s, _ in bad} & STEADY, (w, bad)
        else:
            assert bad == set(), (w, bad)
    assert fair_checked >= len(judged)
    # alerts: through the policy, naming the slice and the model version, steady slices quiet
    items = [(a["window_start_ms"], i) for a in alerts if a["kind"] == "firing"
             for i in a["items"] if i["family"] == "performance"]
    assert items, "no performance alert"
    assert not {i["feature"] for _, i in items} & STEADY
    assert any(i["feature"] == "channel=app" and i["detail"]["model_version"] == "v7"
               and w >= DEGRADE_AT for w, i in items)
    assert all(w >= DEGRADE_AT for w, _ in items)
