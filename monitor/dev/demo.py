"""``make demo`` / ``streamdrift demo``: everything on one machine, computed live.

1. starts a local Apache Kafka broker (KRaft, jars from Maven Central, on 127.0.0.1);
2. writes synthetic training data (with the outcomes of its decisions) and builds the
   reference profile and the reference performance from it with the same code as
   ``streamdrift profile build --labels``;
3. starts the monitor (``streamdrift run``) as its own process;
4. streams traffic for the fictional credit model into a 4-partition topic, with a mean shift
   in two features and a data-quality fault (a field going null) injected at known windows,
   and the outcomes of its decisions on a second topic, each delayed at random
   up to ``labels.max_delay``; from a known window the model goes wrong in one channel only
   (:mod:`monitor.dev.demo_labels`);
5. prints each window's verdict as its report arrives on the reports topic, the performance
   of each window as its labels come in, and the alerts as they arrive on the alerts topic,
   then says where everything was written.

Nothing shown is canned: every line comes from the monitor's own reports and alerts.
:func:`run_demo` is the same run against a given broker (the demo's test uses it).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml

from monitor.dev.demo_labels import (DEGRADED, MAX_DELAY_S, SLICE_KEY, PerformanceLines,
                                     outcome_messages, outcome_table, outcomes, with_labels)
from monitor.dev.synthetic import Fault, Scenario, Shift, generate, to_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "monitor.yaml"
WINDOW_S = 10
EVENTS_PER_WINDOW = 6000
SHIFTED = ("income", "utilization")
CLEAR = "\r" + " " * 100 + "\r"  # wipes the progress line
DEGRADE_AT, DRIFT_AT, NULL_AT = 3, 4, 6  # windows of the injected faults
# (no fairness gap: cutting one age band's approvals lowers recall in every channel, a real
# performance drop that would blur the one-slice degradation the label stream shows)


def demo_config(out: Path, bootstrap: str, http_port: int, suffix: str = "") -> dict:
    from monitor.config import _Loader  # YAML 1.2 booleans: `on:` stays a key

    d = yaml.load(EXAMPLE.read_text(), Loader=_Loader)
    d["monitor"] = f"loan-default-demo{suffix}"
    d["kafka"]["bootstrap"] = bootstrap
    d["kafka"]["session_timeout_ms"] = 6000
    d["stream"]["topic"] = f"loan-events{suffix}"
    d["stream"]["snapshot_interval"] = "1s"  # label revisions every second
    d["windows"] = {"size": f"{WINDOW_S}s", "slide": None, "allowed_lateness": "1s",
                    "idle_timeout": "3s", "min_events": 1000}
    d["reference"] = {"profile": str(out / "ref.profile"), "rolling_windows": 0}
    d["topics"] = {}
    d["output"] = {"reports_jsonl": str(out / "reports.jsonl")}
    d["alerts"] = {"confirm_windows": 1, "resolve_windows": 2, "repeat_interval": "1h"}
    d.pop("slack", None)
    d["http"] = {"host": "127.0.0.1", "port": http_port}
    return with_labels(d, f"loan-outcomes{suffix}")


def _fmt_window(r: dict, t0: int) -> str:
    a = (r["window_start_ms"] - t0) // 1000
    b = (r["window_end_ms"] - t0) // 1000
    head = f"window      {f'{a}s–{b}s':>11} {r['events']:>6,} events"
    flagged = [c for c in r["checks"] if c["flagged"]]
    if r["insufficient_data"]:
        return f"{head}  · insufficient data"
    if not flagged:
        return f"{head}  ✓ healthy"
    parts = []
    for c in sorted(flagged, key=lambda c: (c["family"], c["feature"], c["check"]))[:4]:
        p = f", p={c['p_value']:.1e}" if c["p_value"] is not None else ""
        parts.append(f"{c['family']}:{c['feature']} {c['check']}={c['effect_size']:.3f}{p}")
    more = f" (+{len(flagged) - 4} more)" if len(flagged) > 4 else ""
    return f"{head}  ✗ " + "; ".join(parts) + more


@dataclass
class DemoRun:
    """What a demo run saw: drift reports, the latest performance report per window, the
    alert notifications (as the alerts topic carries them)."""

    t0_ms: int = 0
    reports: list = field(default_factory=list)
    performance: dict = field(default_factory=dict)
    alerts: list = field(default_factory=list)
    dead: int = 0
    ok: bool = False


def main(a: argparse.Namespace) -> int:
    from monitor.dev.kafka import DevKafka

    out = Path(a.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print(f"streamdrift demo — reports, alerts and logs go to {out}/", flush=True)
    print("starting a local Apache Kafka broker (jars from Maven Central, cached) ...", flush=True)
    broker = DevKafka(data_dir=out / "kafka")
    broker.start()
    try:
        print(f"Kafka ready at {broker.bootstrap} in {broker.started_in_s:.1f}s", flush=True)
        run = run_demo(out, broker.bootstrap, a.windows, getattr(a, "port", None),
                       serve=getattr(a, "serve", True))
        return 0 if run.ok else 1
    finally:
        broker.stop()


def run_demo(out: Path, bootstrap: str, n_windows: int = 12, port: int | None = None,
             serve: bool = False, suffix: str = "", echo=print) -> DemoRun:
    """The demo against the broker at ``bootstrap`` (topics and monitor named with
    ``suffix``); prints with ``echo``; returns what it saw."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from monitor.config import from_dict
    from monitor.dev.kafka import free_port

    def say(*x, **kw):
        kw.setdefault("flush", True)
        echo(*x, **kw)

    out.mkdir(parents=True, exist_ok=True)
    port = port if port and _port_free(port) else free_port()
    cfg_dict = demo_config(out, bootstrap, port, suffix)
    cfg_path = out / "monitor.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg_dict, sort_keys=False))
    cfg = from_dict(cfg_dict, base_dir=out)
    max_delay_ms = MAX_DELAY_S * 1000
    _reference(cfg, cfg_path, out, max_delay_ms, say)

    events, labels = cfg.stream.topic, cfg.labels.topic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(events, 4, 1), NewTopic(labels, 4, 1)]).values():
        f.result(30)
    log = open(out / "monitor.log", "wb")
    monitor_proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "-c", str(cfg_path), "--log-level", "warn"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    status_url = f"http://127.0.0.1:{port}/"
    say(f"status page: {status_url}  (the monitor's own HTTP server; /metrics and "
        "/health beside it)")
    try:
        run = _stream(cfg, bootstrap, n_windows, max_delay_ms, monitor_proc, out, say)
        say(f"reports: {out / 'reports.jsonl'}   monitor log: {out / 'monitor.log'}   "
            f"config: {cfg_path}")
        if run.ok and serve:
            say(f"\nthe monitor keeps running: status page at {status_url} — Ctrl-C stops "
                "the monitor and the broker")
            try:
                while monitor_proc.poll() is None:
                    time.sleep(0.5)
                say(f"the monitor exited with {monitor_proc.returncode}; see "
                    f"{out}/monitor.log")
                run.ok = False
            except KeyboardInterrupt:
                say("\nstopping ...")
        return run
    finally:
        if monitor_proc.poll() is None:
            monitor_proc.send_signal(signal.SIGTERM)
            try:
                monitor_proc.wait(20)
            except subprocess.TimeoutExpired:
                monitor_proc.kill()
        log.close()


def _reference(cfg, cfg_path: Path, out: Path, max_delay_ms: int, say) -> None:
    """Training data -> reference profile and reference performance (the same code as
    ``streamdrift profile build --labels``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from monitor.profile import build_profile, save_profile
    from monitor.replay_labels import reference_path, reference_sketch

    train = generate(Scenario(n_events=100_000, seed=11))
    lab = outcome_table(outcomes(train, None, 11, max_delay_ms))
    table = pa.table({k: v for k, v in train.items() if not k.startswith("_")})
    pq.write_table(table, out / "train.parquet")
    pq.write_table(lab, out / "train-labels.parquet")
    profile = build_profile(cfg, out / "train.parquet")
    save_profile(profile, out / "ref.profile")
    reference_path(out / "ref.profile").write_bytes(
        reference_sketch(cfg, profile, table, lab).to_bytes())
    say(f"reference profile {profile.profile_id[:12]} and reference performance built from "
        "100,000 training rows and their outcomes")


def _stream(cfg, bootstrap: str, n_windows: int, max_delay_ms: int, monitor_proc,
            out: Path, say) -> DemoRun:
    from confluent_kafka import Consumer, Producer

    # the traffic: event time starts at a round minute; faults at known windows
    start = (int(time.time() * 1000) // 60_000) * 60_000
    w = WINDOW_S * 1000
    scen = Scenario(
        n_events=EVENTS_PER_WINDOW * n_windows, start_ms=start,
        events_per_s=EVENTS_PER_WINDOW / WINDOW_S, seed=12,
        shifts=tuple(Shift(f, start + DRIFT_AT * w, 0.5) for f in SHIFTED),
        faults=(Fault("debt_ratio", "null", start + NULL_AT * w, start + (NULL_AT + 2) * w),))
    say(f"\ninjected: outcomes of channel {DEGRADED} no longer follow the score from window "
        f"{DEGRADE_AT * WINDOW_S}s (the model goes wrong there, and only there); mean shift "
        f"of 0.5 sd in {', '.join(SHIFTED)} from window {DRIFT_AT * WINDOW_S}s; debt_ratio "
        f"null in windows {NULL_AT * WINDOW_S}s–{(NULL_AT + 2) * WINDOW_S}s")
    say(f"labels: each outcome ('defaulted') arrives on topic {cfg.labels.topic} 0–"
        f"{MAX_DELAY_S}s (uniform) after its prediction; performance is judged per "
        f"{SLICE_KEY} once {cfg.labels.min_labelled} labels are in\n")
    cols = generate(scen)
    lab = outcomes(cols, start + DEGRADE_AT * w, 13, max_delay_ms)
    msgs, keys, times = to_json(cols), cols["event_id"], cols["ts"]
    lab_msgs, lab_times = outcome_messages(lab), lab["known_at"]
    prod = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10,
                     "enable.idempotence": True})
    watch = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{cfg.monitor}-watch",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
    watch.subscribe([cfg.topics.reports, cfg.topics.alerts, cfg.topics.dead_letter])
    # a few malformed messages, so the dead-letter path shows too
    garbage = [b"{not json", b"", b'{"event_id": "x", "ts": "yesterday"}']
    run = DemoRun(t0_ms=start)
    perf = PerformanceLines(start)
    windows = [start + k * w for k in range(n_windows)]
    sent, lab_sent = 0, 0
    per_tick = EVENTS_PER_WINDOW // 4  # a window of event time every ~2 s of wall time
    tick_ms = int(per_tick * 1000 * WINDOW_S / EVENTS_PER_WINDOW)
    label_clock = int(times[0])
    deadline = time.monotonic() + 300
    seen = 0
    while time.monotonic() < deadline:
        if seen >= n_windows and lab_sent == len(lab_msgs) and perf.complete(windows):
            break
        if sent < len(msgs):
            hi = min(sent + per_tick, len(msgs))
            for i in range(sent, hi):
                prod.produce(cfg.stream.topic, msgs[i], keys[i].encode())
            if sent == len(msgs) // 2:
                for g in garbage:
                    prod.produce(cfg.stream.topic, g, b"garbage")
            sent = hi
            label_clock = int(times[hi - 1])
        else:
            label_clock += tick_ms  # the outcomes keep coming after the last prediction
        while lab_sent < len(lab_msgs) and lab_times[lab_sent] <= label_clock:
            k, v = lab_msgs[lab_sent]
            prod.produce(cfg.labels.topic, v, k)
            lab_sent += 1
            if lab_sent % 5000 == 0:
                prod.poll(0)
        prod.poll(0)
        for m in watch.consume(500, timeout=0.5):
            if m.error():
                continue
            if m.topic() == cfg.topics.reports:
                r = orjson.loads(m.value())
                if r.get("kind") == "performance":
                    for line in perf.add(r):
                        say(CLEAR + line)
                else:
                    seen += 1
                    run.reports.append(r)
                    say(CLEAR + _fmt_window(r, start))
            elif m.topic() == cfg.topics.alerts:
                al = orjson.loads(m.value())
                run.alerts.append(al)
                keys_ = ", ".join(i["feature"] + "/" + i["check"] for i in al["items"][:6])
                say(f"{CLEAR}   ALERT {al['kind']:<8} {al['severity']:<8} {keys_}")
            else:
                run.dead += 1
        if monitor_proc.poll() is not None:
            say(f"the monitor exited with {monitor_proc.returncode}; see {out}/monitor.log")
            return run
        say(f"\r… produced {sent:,}/{len(msgs):,} events and {lab_sent:,} outcomes, "
            f"{seen}/{n_windows} windows reported", end="")
    prod.flush(10)
    watch.close()
    run.performance = dict(perf.latest)
    say(CLEAR, end="")
    n_perf = sum(1 for a in run.alerts for i in a["items"] if i["family"] == "performance")
    say(f"done: {seen} windows reported, {len(run.alerts)} alert notifications ({n_perf} "
        f"performance items), {run.dead} malformed messages in the dead-letter topic.")
    run.ok = seen >= n_windows
    return run


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def synth_main(a: argparse.Namespace) -> int:
    """``streamdrift synth``: produce the example model's traffic into the configured topic."""
    from confluent_kafka import Producer

    from monitor.config import kafka_client_config, load

    cfg = load(a.config)
    prod = Producer({**kafka_client_config(cfg), "linger.ms": 10, "enable.idempotence": True})
    start = int(time.time() * 1000)
    chunk = max(1, int(a.rate))
    produced = 0
    seed = 0
    while produced < a.events or a.live:
        cols = generate(Scenario(n_events=chunk, start_ms=start + int(produced / a.rate * 1000),
                                 events_per_s=a.rate, seed=seed))
        for k, m in zip(cols["event_id"], to_json(cols)):
            prod.produce(cfg.stream.topic, m, k.encode())
        prod.poll(0)
        produced += chunk
        seed += 1
        if a.live:
            time.sleep(1.0)
    prod.flush(30)
    print(f"{produced} events produced to {cfg.stream.topic}")
    return 0

