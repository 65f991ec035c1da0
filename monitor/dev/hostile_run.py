"""The hostile-producer run against a real broker, shared by the fault suite and bench/faults.py.

:func:`run_hostile` builds a config and a reference profile in ``workdir``, produces
``n_good`` synthetic events with ``n_bad`` messages of every bad kind of
:mod:`monitor.dev.hostile` slipped between them (one after each good event, round robin over
partitions), runs ``streamdrift run`` as one child process, and reads back the dead-letter
topic (reason headers) and the window reports (``bad_by_reason``). The child's resident
memory is sampled all along: ``rss_growth_mb`` is the growth from the moment the first
dead-lettered message was seen (stage 1 running, kernels compiled) to the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from monitor.dev.hostile import BAD_KINDS, expected_reasons, hostile
from monitor.dev.kafka import _die_with_parent, stop_process
from monitor.dev.synthetic import Scenario, generate, to_json

WINDOW_MS, RATE, START_MS = 3000, 10_000, 1_767_225_600_000
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class HostileRun:
    expected: dict[str, int]  # bad messages produced, by reason
    dead_lettered: dict[str, int]  # read back from the dead-letter topic, by reason header
    reported: dict[str, int]  # summed over the window reports' bad_by_reason
    reported_events: int  # good events in the window reports
    pids: set[int] = field(default_factory=set)  # the child's pid at every sample
    exit_code: int | None = None  # None: it was still running when the run ended
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    wall_s: float = 0.0
    kinds: int = 0

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_start_mb


def config_dict(workdir: Path, bootstrap: str, topic: str) -> dict:
    return {
        "monitor": f"hostile-{uuid.uuid4().hex[:6]}",
        "kafka": {"bootstrap": bootstrap, "session_timeout_ms": 6000},
        "stream": {"topic": topic, "event_time": {"field": "ts", "unit": "ms"},
                   "event_id_field": "event_id", "snapshot_interval": "1s"},
        "features": {"numeric": Scenario().features,
                     "categorical": ["region", "channel", "product"]},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted"},
        "sensitive": {"attribute": "age_band", "reference_group": "36-50"},
        "windows": {"size": f"{WINDOW_MS}ms", "allowed_lateness": "500ms", "idle_timeout": "2s",
                    "min_events": 1000},
        "reference": {"profile": str(workdir / "ref.profile")},
        "http": {"host": "127.0.0.1", "port": 0},
    }


def run_hostile(bootstrap: str, workdir: Path, n_good: int = 100_000, n_bad: int = 100_000,
                seed: int = 11, big: int = 900_000, timeout_s: float = 300.0) -> HostileRun:
    """See the module docstring. ``big`` is the huge strings' length: under the broker's and
    the clients' default 1 MB message limit, so that the dead-letter copy fits too."""
    from monitor.config import from_dict
    from monitor.profile import build_profile, save_profile

    t0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    topic = f"hostile-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    d = config_dict(workdir, bootstrap, topic)
    cfg = from_dict(d, base_dir=workdir, env={})
    ref = generate(Scenario(n_events=20_000, seed=1000))
    pq.write_table(pa.table({k: v for k, v in ref.items() if not k.startswith("_")}),
                   workdir / "train.parquet")
    save_profile(build_profile(cfg, workdir / "train.parquet"), workdir / "ref.profile")
    (workdir / "monitor.yaml").write_text(yaml.safe_dump(d, sort_keys=False))

    cols = generate(Scenario(n_events=n_good, events_per_s=RATE, seed=seed))
    good = to_json(cols)
    template = {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in cols.items()
                if not k.startswith("_")}
    bad = hostile(n_bad, template, seed=seed, kinds=BAD_KINDS, big=big)
    _produce(bootstrap, topic, good, [v for _, v in bad])
    expected = dict(expected_reasons(bad))

    log = open(workdir / "monitor.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "-c",
                             str(workdir / "monitor.yaml"), "--log-level", "info"], cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    run = HostileRun(expected, {}, {}, 0, kinds=len({k for k, _ in bad}))
    dlq = _reader(bootstrap, cfg.topics.dead_letter)
    reports = _reader(bootstrap, cfg.topics.reports)
    windows: dict[int, dict] = {}
    n_windows = -(-n_good * 1000 // RATE // WINDOW_MS)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            for m in dlq.consume(5000, timeout=0.2):
                if m.error() is None:
                    r = dict(m.headers() or [])["streamdrift.reason"].decode()
                    run.dead_lettered[r] = run.dead_lettered.get(r, 0) + 1
            for m in reports.consume(100, timeout=0.05):
                if m.error() is None:
                    rep = orjson.loads(m.value())
                    if rep["window_start_ms"] < START_MS + n_good * 1000 // RATE:
                        windows.setdefault(rep["window_start_ms"], rep)
            rss = _rss_mb(proc.pid)
            run.pids.add(proc.pid)
            if run.rss_start_mb == 0.0 and run.dead_lettered:
                run.rss_start_mb = rss
            run.rss_end_mb = rss or run.rss_end_mb
            if len(windows) >= n_windows and sum(run.dead_lettered.values()) >= n_bad:
                break
    finally:
        run.exit_code = proc.poll()
        stop_process(proc, 30)
        dlq.close()
        reports.close()
        log.close()
    for rep in windows.values():
        run.reported_events += rep["events"]
        for k, v in rep["quality"]["bad_by_reason"].items():
            run.reported[k] = run.reported.get(k, 0) + v
    run.wall_s = time.monotonic() - t0
    return run


def _produce(bootstrap: str, topic: str, good: list[bytes], bad: list) -> None:
    """Good event i to partition i % 4, bad message i right after it (round robin)."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True,
                  "queue.buffering.max.messages": 1_000_000, "compression.type": "lz4"})
    failed: list = []

    def report(err, _msg):
        if err is not None:
            failed.append(err)

    order: list[tuple[bytes | None, int]] = []
    for i in range(max(len(good), len(bad))):
        if i < len(good):
            order.append((good[i], i % 4))
        if i < len(bad):
            order.append((bad[i], (i + 1) % 4))
    for v, part in order:
        while True:
            try:
                p.produce(topic, v, partition=part, on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(120) or failed:
        raise RuntimeError(f"producing the hostile traffic failed: {failed[:3]}")


def _reader(bootstrap: str, topic: str) -> Consumer:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "topic.metadata.refresh.interval.ms": 1000})
    c.subscribe([topic])
    return c


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
