"""A workload with a record of what was sent: the events the end-to-end tests, the fault
suite and the benchmarks produce, and what the monitor must report for them.

:func:`produce` (all at once, or in chunks) and :class:`Feed` (in slices on demand, while a
monitor runs) send a :class:`~monitor.dev.synthetic.Scenario` to a topic and keep, per event,
its partition and offset (:class:`Produced`); :func:`expected_window_counts` and
:func:`expected_digests` compute each window's event count and sketch digest from that
record, as stage 2 must report them. :func:`config_dict` and :func:`build_reference` make a
monitor config and its reference profile for the workload. Used by ``tests/`` and ``bench/``
alike (benchmarks never import the tests).
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from monitor.config import from_dict
from monitor.dev.synthetic import Scenario, generate, to_json

WINDOW_MS = 3000
RATE = 10_000  # events per second of event time: 30,000 events per window
START_MS = 1_767_225_600_000  # a multiple of WINDOW_MS


def config_dict(tmp: Path, bootstrap: str, topic: str, **windows) -> dict:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    w = {"size": f"{WINDOW_MS}ms", "allowed_lateness": "500ms", "idle_timeout": "2s",
         "min_events": 1000}
    # keyword durations are ints of milliseconds here; the config wants the unit written
    w.update({k: f"{v}ms" if k != "min_events" and isinstance(v, int) else v
              for k, v in windows.items()})
    return {
        "monitor": name,
        "kafka": {"bootstrap": bootstrap, "session_timeout_ms": 6000},
        "stream": {"topic": topic, "event_time": {"field": "ts", "unit": "ms"},
                   "event_id_field": "event_id", "snapshot_interval": "1s"},
        "features": {"numeric": Scenario().features,
                     "categorical": ["region", "channel", "product"]},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted"},
        "sensitive": {"attribute": "age_band", "reference_group": "36-50",
                      "min_group_events": 200},
        "windows": w,
        "reference": {"profile": str(tmp / "ref.profile")},
        "checks": {"family_level": 0.01, "correction": "bonferroni"},
        "alerts": {"confirm_windows": 1, "resolve_windows": 1, "reopen_windows": 0},
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


class Feed:
    """A scenario sent in slices on demand (``send(n_events)``), offsets tracked exactly,
    with ``garbage`` messages slipped in round robin; ``produced()`` is what was sent."""

    def __init__(self, bootstrap: str, topic: str, scen: Scenario, partitions: int = 4,
                 garbage_every: int = 0, garbage: bytes = b"{",
                 window_ms: int = WINDOW_MS) -> None:
        self.window_ms = window_ms
        self.cols = generate(scen)
        self.msgs = to_json(self.cols)
        self.n = len(self.msgs)
        self.partitions = partitions
        self.part = (np.arange(self.n) % partitions).astype(np.int64)
        self.offset = np.zeros(self.n, np.int64)
        self.next_off = [0] * partitions
        self.sent = 0
        self.garbage_every, self.garbage = garbage_every, garbage
        self.bad_sent = 0
        self.bad_window: list[int] = []  # the window each garbage message counts in
        self._max_ts = [None] * partitions
        self.topic = topic
        self.p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10,
                           "enable.idempotence": True, "message.timeout.ms": 0})

    def _send(self, value: bytes, partition: int) -> None:
        while True:
            try:
                self.p.produce(self.topic, value, partition=partition)
                return
            except BufferError:
                self.p.poll(0.05)

    def send(self, n: int) -> int:
        hi = min(self.n, self.sent + n)
        for i in range(self.sent, hi):
            pp = int(self.part[i])
            self._send(self.msgs[i], pp)
            self.offset[i] = self.next_off[pp]
            self.next_off[pp] += 1
            t = int(self.cols["ts"][i])
            self._max_ts[pp] = t if self._max_ts[pp] is None else max(self._max_ts[pp], t)
            if self.garbage_every and (i + 1) % self.garbage_every == 0:
                gp = self.bad_sent % self.partitions
                m = self._max_ts[gp]
                assert m is not None, "garbage before the partition's first event"
                self.bad_window.append(m - m % self.window_ms)
                self._send(self.garbage, gp)
                self.next_off[gp] += 1
                self.bad_sent += 1
        assert self.p.flush(120) == 0
        self.sent = hi
        return hi

    @property
    def done(self) -> bool:
        return self.sent >= self.n

    def produced(self) -> Produced:
        k = self.sent
        cols = {c: v[:k] for c, v in self.cols.items()}
        return Produced(cols, self.part[:k], self.offset[:k])


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
