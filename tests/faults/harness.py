"""Shared pieces of the fault suite: a small scenario, monitor processes that can be armed
with a fault point, and the verdict "every window exactly as produced, nothing twice".

Small on purpose (3,000 events per window, 4 partitions) so that several scenarios run side
by side on the session broker within a few minutes on two cores.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Consumer

from monitor.dev.synthetic import Scenario, Shift
from tests.e2e_harness import (
    ROOT,
    START_MS,
    WINDOW_MS,
    Produced,
    ReportReader,
    build_reference,
    comparable,
    config_dict,
    create_topic,
    expected_digests,
    expected_window_counts,
    write_config,
)

class AssignedReportReader(ReportReader):
    """The reports topic read by assignment from its start, without a consumer group: no
    group coordinator to wait for right after a broker restart."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                           "enable.auto.commit": False, "reconnect.backoff.max.ms": 1000})
        self.c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self.copies = {}


RATE = 1000  # events per second of event time: 3,000 per window
FAULT_EXIT = 86  # monitor.faults.EXIT_CODE


@dataclass
class Setup:
    tmp: Path
    bootstrap: str
    topic: str
    d: dict
    cfg: object
    profile: object
    path: Path


def setup(tmp: Path, bootstrap: str, partitions: int = 4, **windows) -> Setup:
    topic = create_topic(bootstrap, partitions)
    d = config_dict(tmp, bootstrap, topic, **{"min_events": 500, "idle_timeout": "1500ms",
                                              **windows})
    d["kafka"]["session_timeout_ms"] = 6000
    cfg, profile = build_reference(tmp, d, n=20_000)
    return Setup(tmp, bootstrap, topic, d, cfg, profile, write_config(tmp, d))


def scenario(n_windows: int, seed: int, drift_every: int | None = 3) -> Scenario:
    """``n_windows`` windows of events; with ``drift_every``, two features shift by one
    standard deviation and back every that many windows, so alerts fire and resolve all
    along (the sinks have something to deliver in every stretch of the data)."""
    shifts = () if drift_every is None else tuple(
        Shift(f, START_MS + k * drift_every * WINDOW_MS, 1.0 if k % 2 else -1.0)
        for k in range(1, n_windows // drift_every) for f in ("utilization", "savings"))
    return Scenario(n_events=n_windows * WINDOW_MS * RATE // 1000, events_per_s=RATE,
                    seed=seed, shifts=shifts)


_LIVE: set[Monitor] = set()  # every monitor process started and not yet seen to end
_LIVE_LOCK = threading.Lock()


def kill_monitors(thread: int | None = None) -> int:
    """``kill -9`` every monitor still running (only those started by ``thread``, if given):
    a scenario or test that fails must leave nothing behind. Returns how many it killed."""
    with _LIVE_LOCK:
        mine = [m for m in _LIVE if thread is None or m.thread == thread]
    n = 0
    for m in mine:
        n += m.alive()
        m.kill9()
    return n


atexit.register(kill_monitors)  # an interrupted session; a killed one: _die_with_parent


def run_scenario(run, *args):
    """``run(*args)`` in this thread; however it ends, the monitors it started end too."""
    try:
        return run(*args)
    finally:
        kill_monitors(thread=threading.get_ident())


class Monitor:
    """``streamdrift run`` as a child process; ``fault`` arms ``STREAMDRIFT_FAULT``. It dies
    with the test process (``PR_SET_PDEATHSIG``), and :func:`kill_monitors` ends the ones a
    failing scenario or test left running."""

    def __init__(self, s: Setup, log: Path, fault: str | None = None, stage: str = "all",
                 config: Path | None = None) -> None:
        from monitor.dev.kafka import _die_with_parent

        self.log = log
        self.thread = threading.get_ident()
        env = {k: v for k, v in os.environ.items() if k != "STREAMDRIFT_FAULT"}
        env["PYTHONUNBUFFERED"] = "1"
        if fault:
            env["STREAMDRIFT_FAULT"] = fault
        with open(log, "ab") as f:
            f.write(f"\n=== start (fault {fault}) ===\n".encode())
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "run", "-c", str(config or s.path),
                 "--stage", stage, "--log-level", "info"], cwd=ROOT, env=env,
                stdout=f, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._from = log.stat().st_size

    def text(self) -> str:
        with open(self.log, "rb") as f:
            f.seek(self._from)
            return f.read().decode(errors="replace")

    def wait_log(self, needle: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while needle not in self.text():
            assert self.alive(), f"monitor exited {self.proc.returncode}:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {needle!r} in {timeout_s}s: {self.log}"
            time.sleep(0.1)

    def wait_started(self, timeout_s: float) -> None:
        """Until stage 1 took its partitions, or the process ended (a fault may come first)."""
        deadline = time.monotonic() + timeout_s
        while "assigned partitions" not in self.text() and self.alive():
            assert time.monotonic() < deadline, f"not started in {timeout_s}s: {self.log}"
            time.sleep(0.1)

    def wait_exit(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"monitor still running after {timeout_s}s:\n"
                                 f"{self.text()[-3000:]}") from None

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.kill9()

    def alive(self) -> bool:
        return self.proc.poll() is None


def read_topic(bootstrap: str, topic: str, idle_s: float = 3.0) -> list[dict]:
    """Every message of a (small) topic, as JSON, from the beginning."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out, last = [], time.monotonic()
    while time.monotonic() - last < idle_s:
        for m in c.consume(500, timeout=0.5):
            if m.error() is None:
                out.append(orjson.loads(m.value()))
                last = time.monotonic()
    c.close()
    return out


@dataclass
class Verdict:
    windows_expected: int
    windows_lost: int
    events_lost: int  # produced events missing from (or extra in) the reports, in absolute value
    reports_duplicated: int  # windows reported more than once with different content
    digests_wrong: int
    alerts_duplicated: int  # one window paged twice under different ids
    bad_by_window: dict  # malformed messages counted in the reports, by window


def judge(s: Setup, produced: Produced, reader: ReportReader, end_ms: int) -> Verdict:
    produced = only_before(produced, end_ms)
    counts = expected_window_counts(produced)
    digests = expected_digests(s.cfg, s.profile, produced)
    got = {w: c for w, c in reader.copies.items() if w < end_ms}
    lost = sorted(set(counts) - set(got))
    dup = sum(1 for c in got.values() if any(comparable(x) != comparable(c[0]) for x in c[1:]))
    ev = sum(abs(counts.get(w, 0) - c[0]["events"]) for w, c in got.items())
    ev += sum(counts[w] for w in lost)
    wrong = sum(1 for w, c in got.items() if c[0]["sketch_digest"] != digests.get(w))
    alerts = read_topic(s.bootstrap, s.cfg.topics.alerts, idle_s=2.0)
    # a page twice: one alert id with two contents, or two ids for the same thing (window,
    # kind and items); one window may carry several different alerts
    by_id: dict[str, set[bytes]] = {}
    by_what: dict[tuple, set[str]] = {}
    for a in alerts:
        by_id.setdefault(a["alert_id"], set()).add(orjson.dumps(a, option=orjson.OPT_SORT_KEYS))
        what = (a["window_start_ms"], a["kind"], tuple(sorted(i["key"] for i in a["items"])))
        by_what.setdefault(what, set()).add(a["alert_id"])
    adup = sum(len(v) - 1 for v in by_id.values()) + sum(len(v) - 1 for v in by_what.values())
    bad = {w: n for w, c in got.items()
           if (n := sum(c[0]["quality"]["bad_by_reason"].values()))}
    return Verdict(len(counts), len(lost), ev, dup, wrong, adup, bad)


def assert_exact(v: Verdict) -> None:
    assert (v.windows_lost, v.events_lost, v.reports_duplicated, v.digests_wrong,
            v.alerts_duplicated) == (0, 0, 0, 0, 0), v


def end_ms(produced: Produced) -> int:
    """The start of the last window with data: the windows before it are judged (the last
    one may only close when wall time moves an idle partition on)."""
    t = produced.cols["ts"]
    return int(t.max() - t.max() % WINDOW_MS)


def closed_windows(produced: Produced) -> int:
    t = produced.cols["ts"]
    return int(np.unique(t - t % WINDOW_MS).size) - 1


def only_before(produced: Produced, end: int) -> Produced:
    keep = produced.cols["ts"] < end
    return Produced({c: v[keep] for c, v in produced.cols.items()}, produced.partition[keep],
                    produced.offset[keep])
