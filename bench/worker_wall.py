"""Wall-clock throughput of one worker: ``streamdrift run --source-processes N`` (stage 1 in N
processes + stage 2 in the parent) as a child process, fed while it runs.

The worker starts on an empty 4-partition topic and is fed once ``/health`` says every stage
is ready (each stage-1 process owns partitions, stage 2 runs), so start-up (imports, numba
compilation, group joins) is not timed. The bench process then produces the pre-encoded
events as fast as the client takes them, and the clock runs from the first produce until
``streamdrift_events_in`` (from ``/metrics``) reaches the number sent. The producer shares
the machine's cores with the worker (it costs about a tenth of what the worker spends).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer

from monitor.dev.workload import create_topic, write_config
from monitor.dev.kafka import stop_process

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return 0, ""


def _events_in(port: int) -> int:
    _, text = _get(f"http://127.0.0.1:{port}/metrics")
    m = re.search(r"^streamdrift_events_in_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    return int(float(m.group(1))) if m else 0


def worker_rate(bootstrap: str, tmp: Path, d: dict, msgs: list[bytes], processes: int,
                tag: str) -> float:
    """Events per wall second of one worker with ``processes`` stage-1 processes."""
    topic = create_topic(bootstrap, 4)
    port = _free_port()
    cfg = dict(d, monitor=f"{d['monitor']}-{tag}", kafka=dict(d["kafka"]),
               stream=dict(d["stream"], topic=topic), http={"host": "127.0.0.1", "port": port})
    where = tmp / tag
    where.mkdir()
    log = open(where / "worker.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "-c",
                             str(write_config(where, cfg)), "--source-processes",
                             str(processes), "--log-level", "warn"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while _get(f"http://127.0.0.1:{port}/health")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready: see {where / 'worker.log'}")
            time.sleep(0.2)
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                      "batch.size": 1_000_000, "queue.buffering.max.messages": 2_000_000,
                      "queue.buffering.max.kbytes": 2_000_000})
        t0 = time.perf_counter()
        for i, m in enumerate(msgs):
            p.produce(topic, m, partition=i % 4)
            if i % 50_000 == 0:
                p.poll(0)
        p.flush(60)
        while _events_in(port) < len(msgs):
            if proc.poll() is not None or time.perf_counter() - t0 > 600:
                raise RuntimeError(f"worker stalled: see {where / 'worker.log'}")
            time.sleep(0.05)
        return len(msgs) / (time.perf_counter() - t0)
    finally:
        stop_process(proc, 60)
        log.close()
