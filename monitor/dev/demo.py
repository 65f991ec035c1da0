"""``make demo`` / ``streamdrift demo``: everything on one machine, computed live.

1. starts a local Apache Kafka broker (KRaft, jars from Maven Central, on 127.0.0.1);
2. writes synthetic training data and builds the reference profile from it with the same code
   as ``streamdrift profile build``;
3. starts the monitor (``streamdrift run``) as its own process;
4. streams traffic for the fictional credit model into a 4-partition topic, with a mean shift
   in two features, a data-quality fault (a field going null) and a fairness gap injected at
   known windows;
5. prints each window's verdict as its report arrives on the reports topic, and the alerts
   as they arrive on the alerts topic, then says where everything was written.

Nothing shown is canned: every line comes from the monitor's own reports and alerts.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import yaml

from monitor.dev.synthetic import FairnessGap, Fault, Scenario, Shift, generate, to_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "monitor.yaml"
WINDOW_S = 10
EVENTS_PER_WINDOW = 6000
SHIFTED = ("income", "utilization")


def demo_config(out: Path, bootstrap: str, http_port: int) -> dict:
    from monitor.config import _Loader  # YAML 1.2 booleans: `on:` stays a key

    d = yaml.load(EXAMPLE.read_text(), Loader=_Loader)
    d["monitor"] = "loan-default-demo"
    d["kafka"]["bootstrap"] = bootstrap
    d["kafka"]["session_timeout_ms"] = 6000
    d["stream"]["topic"] = "loan-events"
    d["windows"] = {"size": f"{WINDOW_S}s", "slide": None, "allowed_lateness": "1s",
                    "idle_timeout": "3s", "min_events": 1000}
    d["reference"] = {"profile": str(out / "ref.profile"), "rolling_windows": 0}
    d["topics"] = {}
    d["output"] = {"reports_jsonl": str(out / "reports.jsonl")}
    d["alerts"] = {"confirm_windows": 1, "resolve_windows": 2, "repeat_interval": "1h"}
    d.pop("slack", None)
    d["http"] = {"host": "127.0.0.1", "port": http_port}
    return d


def _fmt_window(r: dict, t0: int) -> str:
    a = (r["window_start_ms"] - t0) // 1000
    b = (r["window_end_ms"] - t0) // 1000
    head = f"window {f'{a}s–{b}s':>11} {r['events']:>6,} events"
    flagged = [c for c in r["checks"] if c["flagged"]]
    if r["insufficient_data"]:
        return f"{head}  · insufficient data"
    if not flagged:
        return f"{head}  ✓ healthy"
    parts = []
    for c in sorted(flagged, key=lambda c: (c["family"], c["feature"], c["check"]))[:8]:
        p = f", p={c['p_value']:.1e}" if c["p_value"] is not None else ""
        parts.append(f"{c['family']}:{c['feature']} {c['check']}={c['effect_size']:.3f}{p}")
    more = f" (+{len(flagged) - 8} more)" if len(flagged) > 8 else ""
    return f"{head}  ✗ " + "; ".join(parts) + more


def main(a: argparse.Namespace) -> int:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from monitor.config import from_dict
    from monitor.dev.kafka import DevKafka, free_port
    from monitor.profile import build_profile, save_profile

    out = Path(a.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    n_windows = a.windows
    print(f"streamdrift demo — reports, alerts and logs go to {out}/", flush=True)
    print("starting a local Apache Kafka broker (jars from Maven Central, cached) ...", flush=True)
    broker = DevKafka(data_dir=out / "kafka")
    broker.start()
    monitor_proc = None
    try:
        print(f"Kafka ready at {broker.bootstrap} in {broker.started_in_s:.1f}s", flush=True)
        port = a.port if getattr(a, "port", None) and _port_free(a.port) else free_port()
        cfg_dict = demo_config(out, broker.bootstrap, port)
        cfg_path = out / "monitor.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg_dict, sort_keys=False))
        cfg = from_dict(cfg_dict, base_dir=out)

        # training data -> reference profile (the same code as `streamdrift profile build`)
        import pyarrow as pa
        import pyarrow.parquet as pq

        train = generate(Scenario(n_events=100_000, seed=11))
        pq.write_table(pa.table({k: v for k, v in train.items() if not k.startswith("_")}),
                       out / "train.parquet")
        profile = build_profile(cfg, out / "train.parquet")
        save_profile(profile, out / "ref.profile")
        print(f"reference profile {profile.profile_id[:12]} built from 100,000 training rows",
              flush=True)

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for f in admin.create_topics([NewTopic("loan-events", 4, 1)]).values():
            f.result(30)
        log = open(out / "monitor.log", "wb")
        monitor_proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "run", "-c", str(cfg_path),
             "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        status_url = f"http://127.0.0.1:{port}/"
        print(f"status page: {status_url}  (the monitor's own HTTP server; /metrics and "
              "/health beside it)", flush=True)

        # the traffic: event time starts at a round minute; faults at known windows
        start = (int(time.time() * 1000) // 60_000) * 60_000
        w = WINDOW_S * 1000
        drift_at, null_at, gap_at = 4, 6, 8
        scen = Scenario(
            n_events=EVENTS_PER_WINDOW * n_windows, start_ms=start,
            events_per_s=EVENTS_PER_WINDOW / WINDOW_S, seed=12,
            shifts=tuple(Shift(f, start + drift_at * w, 0.5) for f in SHIFTED),
            faults=(Fault("debt_ratio", "null", start + null_at * w, start + (null_at + 2) * w),),
            gaps=(FairnessGap("18-25", start + gap_at * w, 0.6),))
        print(f"\ninjected: mean shift of 0.5 sd in {', '.join(SHIFTED)} from window "
              f"{drift_at * WINDOW_S}s; debt_ratio null in windows {null_at * WINDOW_S}s–"
              f"{(null_at + 2) * WINDOW_S}s; 60% of approvals of age band 18-25 flipped from "
              f"window {gap_at * WINDOW_S}s\n", flush=True)
        cols = generate(scen)
        msgs = to_json(cols)
        keys = cols["event_id"]
        prod = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 10,
                         "enable.idempotence": True})
        watch = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "demo-watch",
                          "auto.offset.reset": "earliest", "enable.auto.commit": False})
        watch.subscribe([cfg.topics.reports, cfg.topics.alerts, cfg.topics.dead_letter])
        # a few malformed messages, so the dead-letter path shows too
        garbage = [b"{not json", b"", b'{"event_id": "x", "ts": "yesterday"}']
        seen, alerts, sent, dead = 0, 0, 0, 0
        per_tick = EVENTS_PER_WINDOW // 4  # a window of event time every ~2 s of wall time
        deadline = time.monotonic() + 240
        while seen < n_windows and time.monotonic() < deadline:
            if sent < len(msgs):
                for i in range(sent, min(sent + per_tick, len(msgs))):
                    prod.produce("loan-events", msgs[i], keys[i].encode())
                if sent == len(msgs) // 2:
                    for g in garbage:
                        prod.produce("loan-events", g, b"garbage")
                sent = min(sent + per_tick, len(msgs))
                prod.poll(0)
            for m in watch.consume(500, timeout=0.5):
                if m.error():
                    continue
                if m.topic() == cfg.topics.reports:
                    seen += 1
                    print("\r" + " " * 78 + "\r" + _fmt_window(orjson.loads(m.value()), start),
                          flush=True)
                elif m.topic() == cfg.topics.alerts:
                    alerts += 1
                    al = orjson.loads(m.value())
                    keys_ = ", ".join(i["feature"] + "/" + i["check"] for i in al["items"][:6])
                    print(f"   ALERT {al['kind']:<8} {al['severity']:<8} {keys_}", flush=True)
                else:
                    dead += 1
            if monitor_proc.poll() is not None:
                print(f"the monitor exited with {monitor_proc.returncode}; see {out}/monitor.log")
                return 1
            prod.flush(0)
            print(f"\r… produced {sent:,}/{len(msgs):,} events, {seen}/{n_windows} windows "
                  f"reported, waiting for the next window to close", end="", flush=True)
        prod.flush(10)
        watch.close()
        print("\r" + " " * 78)
        print(f"done: {seen} windows reported, {alerts} alert notifications, {dead} malformed "
              f"messages in the dead-letter topic.")
        print(f"reports: {out / 'reports.jsonl'}   monitor log: {out / 'monitor.log'}   "
              f"config: {cfg_path}")
        if seen < n_windows:
            return 1
        if getattr(a, "serve", True):
            print(f"\nthe monitor keeps running: status page at {status_url} — Ctrl-C stops "
                  "the monitor and the broker", flush=True)
            try:
                while monitor_proc.poll() is None:
                    time.sleep(0.5)
                print(f"the monitor exited with {monitor_proc.returncode}; see "
                      f"{out}/monitor.log")
                return 1
            except KeyboardInterrupt:
                print("\nstopping ...", flush=True)
        return 0
    finally:
        if monitor_proc is not None and monitor_proc.poll() is None:
            monitor_proc.send_signal(signal.SIGTERM)
            try:
                monitor_proc.wait(20)
            except subprocess.TimeoutExpired:
                monitor_proc.kill()
        broker.stop()


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

