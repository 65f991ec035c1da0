"""Shared pieces of the end-to-end tests: a config, a reference profile, produced traffic,
monitor processes, and reading reports back from the reports topic."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from monitor.config import from_dict
from monitor.dev.synthetic import Scenario, generate, to_json

ROOT = Path(__file__).resolve().parents[1]
WINDOW_MS = 3000
RATE = 10_000  # events per second of event time: 30,000 events per window
START_MS = 1_767_225_600_000  # a multiple of WINDOW_MS


def config_dict(tmp: Path, bootstrap: str, topic: str, **windows) -> dict:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    w = {"size": WINDOW_MS, "allowed_lateness": 500, "idle_timeout": 2000, "min_events": 1000}
    w.update(windows)
    return {
        "monitor": name,
        "kafka": {"bootstrap": bootstrap, "session_timeout_ms": 6000},
        "stream": {"topic": topic, "event_time": {"field": "ts", "unit": "ms"},
                   "event_id_field": "event_id", "snapshot_interval": 1000},
        "features": {"numeric": Scenario().features,
                     "categorical": ["region", "channel", "product"]},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted"},
        "sensitive": {"attribute": "age_band", "reference_group": "36-50",
                      "min_group_events": 200},
        "windows": w,
        "reference": {"profile": str(tmp / "ref.profile")},
        "checks": {"family_level": 0.01, "correction": "bonferroni"},
        "alerts": {"confirm_windows": 1, "resolve_windows": 1},
        "http": {"host": "127.0.0.1", "port": 0},
    }


def write_config(tmp: Path, d: dict) -> Path:
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def build_reference(tmp: Path, d: dict, seed: int = 1000, n: int = 100_000):
    from monitor.profile import build_profile, save_profile

    cfg = from_dict(d, base_dir=tmp, env={})
    cols = generate(Scenario(n_events=n, seed=seed))
    pq.write_table(pa.table({k: v for k, v in cols.items() if not k.startswith("_")}),
                   tmp / "train.parquet")
    profile = build_profile(cfg, tmp / "train.parquet")
    save_profile(profile, tmp / "ref.profile")
    return cfg, profile


def create_topic(bootstrap: str, partitions: int = 4, config: dict | None = None,
                 client: dict | None = None) -> str:
    """``client``: librdkafka settings (a secured cluster's admin) instead of ``bootstrap``."""
    name = f"events-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(client or {"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, 1,
                                           config=config or {})]).values():
        f.result(30)
    return name


@dataclass
class Produced:
    """What a test produced: the columns, and per event its partition and offset."""

    cols: dict
    partition: np.ndarray
    offset: np.ndarray
    extra: list = field(default_factory=list)  # (partition, offset, raw bytes) of garbage

    def table(self) -> pa.Table:
        t = {k: v for k, v in self.cols.items() if not k.startswith("_")}
        t["_partition"] = self.partition
        t["_offset"] = self.offset
        return pa.table(t)


def produce(bootstrap: str, topic: str, scen: Scenario, partitions: int = 4,
            garbage: list[bytes] = (), garbage_every: int = 0, chunks: int = 1,
            between_chunks=None, garbage_from: int = 0, key_by_id: bool = False,
            ingest_delay_ms=None, client: dict | None = None,
            cuts: list[int] | None = None) -> Produced:
    """Event i goes to partition i % partitions (or, with ``key_by_id``, to a partition
    chosen by its event id, as a producer keying by id would: a re-sent event lands where
    the first copy did); garbage message j is slipped in after every ``garbage_every``
    events from event ``garbage_from`` on (round robin over partitions). With
    ``ingest_delay_ms`` (a function of the event-time column), each event's Kafka timestamp
    is its event time plus that delay. ``cuts`` (event indexes) split the chunks there
    instead of evenly. Offsets are tracked exactly."""
    cols = generate(scen)
    stamps = None
    if ingest_delay_ms is not None:
        stamps = (cols["ts"] + ingest_delay_ms(cols["ts"])).astype(np.int64).tolist()
    msgs = to_json(cols)
    n = len(msgs)
    if key_by_id:
        part = np.array([zlib.crc32(e.encode()) % partitions for e in cols["event_id"]],
                        np.int64)
    else:
        part = (np.arange(n) % partitions).astype(np.int64)
    next_off = [0] * partitions
    offs = np.zeros(n, np.int64)
    extra = []
    p = Producer({**(client or {"bootstrap.servers": bootstrap}), "linger.ms": 20,
                  "enable.idempotence": True,
                  "queue.buffering.max.messages": 1_000_000})
    g = 0
    bounds = np.linspace(0, n, chunks + 1).astype(int) if cuts is None else \
        np.array([0, *cuts, n])  # ``cuts``: event indexes where a chunk ends
    chunks = len(bounds) - 1
    for c in range(chunks):
        for i in range(bounds[c], bounds[c + 1]):
            pp = int(part[i])
            _send(p, topic, msgs[i], pp, stamps[i] if stamps is not None else None)
            offs[i] = next_off[pp]
            next_off[pp] += 1
            if garbage_every and g < len(garbage) and i >= garbage_from \
                    and (i + 1 - garbage_from) % garbage_every == 0:
                gp = g % partitions
                _send(p, topic, garbage[g], gp)
                extra.append((gp, next_off[gp], garbage[g]))
                next_off[gp] += 1
                g += 1
        assert p.flush(60) == 0
        if between_chunks is not None:
            between_chunks(c)
    assert g == len(garbage), f"only {g} of {len(garbage)} garbage messages were placed"
    return Produced(cols, part, offs, extra)


def _send(p: Producer, topic: str, value: bytes, partition: int,
          timestamp: int | None = None) -> None:
    while True:
        try:
            p.produce(topic, value, partition=partition, timestamp=timestamp or 0)
            return
        except BufferError:
            p.poll(0.05)


class MonitorProcess:
    """``streamdrift run`` as a child process, logging to a file."""

    def __init__(self, cfg_path: Path, log: Path, stage: str = "all",
                 env: dict | None = None) -> None:
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "run", "-c", str(cfg_path), "--stage", stage,
             "--log-level", "info"], cwd=ROOT, env=env,
            stdout=open(log, "ab"), stderr=subprocess.STDOUT)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def alive(self) -> bool:
        return self.proc.poll() is None


class ReportReader:
    """Reads the reports topic from the beginning; keeps every copy of every report."""

    def __init__(self, bootstrap: str, topic: str, client: dict | None = None) -> None:
        self.c = Consumer({**(client or {"bootstrap.servers": bootstrap}),
                           "group.id": f"r-{uuid.uuid4().hex}",
                           "auto.offset.reset": "earliest", "enable.auto.commit": False,
                           "topic.metadata.refresh.interval.ms": 1000})
        self.c.subscribe([topic])
        self.copies: dict[int, list[dict]] = {}

    def poll(self, timeout: float = 1.0) -> None:
        for m in self.c.consume(1000, timeout=timeout):
            if m.error() is None:
                r = orjson.loads(m.value())
                self.copies.setdefault(r["window_start_ms"], []).append(r)

    def wait_for(self, n_windows: int, timeout_s: float, procs=(), before_ms: int | None = None
                 ) -> dict[int, dict]:
        """The first ``n_windows`` windows (those starting before ``before_ms`` when given:
        after the data, idle partitions keep closing empty windows as wall time passes)."""
        deadline = time.monotonic() + timeout_s

        def got() -> int:
            return sum(1 for w in self.copies if before_ms is None or w < before_ms)

        while got() < n_windows and time.monotonic() < deadline:
            self.poll()
            for p in procs:
                assert p.alive(), f"monitor died: see {p.log}\n{p.log.read_text()[-3000:]}"
        assert got() >= n_windows, (
            f"only {got()} of {n_windows} windows reported in {timeout_s}s")
        return {w: v[0] for w, v in sorted(self.copies.items())
                if before_ms is None or w < before_ms}

    def close(self) -> None:
        self.c.close()


def expected_window_counts(produced: Produced, size_ms: int = WINDOW_MS) -> dict[int, int]:
    t = produced.cols["ts"]
    starts = t - t % size_ms
    u, c = np.unique(starts, return_counts=True)
    return dict(zip(u.tolist(), c.tolist()))


def expected_digests(cfg, profile, produced: Produced, size_ms: int = WINDOW_MS
                     ) -> dict[int, str]:
    """sha256 of the merged sketch of each window, built here from the produced rows: one
    update per partition, merged in partition order, as stage 2 merges."""
    from kernels import WindowSketch

    from monitor.stage1.decode import Decoder

    table = produced.table()
    cats = {n: list(profile.categories[n]) for n in cfg.features.categorical}
    dec = Decoder(cfg, cats, list(profile.groups))
    t = produced.cols["ts"]
    starts = t - t % size_ms
    out = {}
    for s in np.unique(starts).tolist():
        merged = None
        for p in np.unique(produced.partition).tolist():
            rows = np.flatnonzero((starts == s) & (produced.partition == p))
            if rows.size == 0:
                continue
            b = dec.decode_table(table.take(pa.array(rows)), offsets=produced.offset[rows]).batch
            sk = WindowSketch.empty(profile).update(b)
            merged = sk if merged is None else merged.merge(sk)
        out[s] = hashlib.sha256(merged.to_bytes()).hexdigest()
    return out


def comparable(r: dict) -> dict:
    """A report without the fields that legitimately differ between runs."""
    return {k: v for k, v in r.items() if k not in ("partitions",)}
