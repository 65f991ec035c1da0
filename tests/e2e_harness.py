"""Shared pieces of the end-to-end tests: monitor processes and reading reports back from the
reports topic. The workload (a config, a reference profile, produced traffic with its record,
the expected counts and digests) lives in :mod:`monitor.dev.workload`, which the benchmarks
share; it is re-exported here for the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer

from monitor.dev.kafka import stop_process
from monitor.dev.workload import (
    RATE,
    START_MS,
    WINDOW_MS,
    Feed,
    Produced,
    build_reference,
    config_dict,
    create_topic,
    expected_digests,
    expected_window_counts,
    produce,
    write_config,
)

__all__ = ["RATE", "START_MS", "WINDOW_MS", "Feed", "Produced", "build_reference", "config_dict",
           "create_topic", "expected_digests", "expected_window_counts", "produce",
           "write_config", "ROOT", "MonitorProcess", "ReportReader", "comparable"]

ROOT = Path(__file__).resolve().parents[1]


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
        stop_process(self.proc, 30)

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


def comparable(r: dict) -> dict:
    """A report without the fields that legitimately differ between runs."""
    return {k: v for k, v in r.items() if k not in ("partitions",)}
