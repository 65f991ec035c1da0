"""The fault scenarios, as functions returning what they observed (tests assert on it and
bench/faults.py reports it). Each runs on its own topic and monitor name, so several run side
by side; only the broker-restart scenario starts a broker of its own.
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from monitor.dev.workload import Feed
from monitor.faults import POINTS
from tests.e2e_harness import comparable
from tests.faults.harness import (
    AssignedReportReader,
    Monitor,
    Verdict,
    closed_windows,
    end_ms,
    judge,
    only_before,
    scenario,
    setup,
)

WINDOW_EVENTS = 3000
# (point, visit): every point the code has, each one monitor run
PLAN = [
    ("source.after_state", 1), ("source.between_partials", 1), ("source.after_partials", 2),
    ("source.between_states", 1), ("source.after_dead_letter", 1),
    ("stage2.before_table_advance", 1), ("stage2.after_report", 1), ("sinks.after_write", 1),
]
assert sorted(p for p, _ in PLAN) == sorted(POINTS)


@dataclass
class Outcome:
    verdict: Verdict
    injected: int = 0
    exits: list = field(default_factory=list)
    recovery_s: list = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    want_bad: dict = field(default_factory=dict)


def _want_bad(feed: Feed, end: int) -> dict[int, int]:
    out: dict[int, int] = {}
    for w in feed.bad_window:
        if w < end:
            out[w] = out.get(w, 0) + 1
    return out


def _finish(s, feed: Feed, log: Path, procs: list[Monitor], timeout_s: float = 240) -> Verdict:
    produced = feed.produced()
    reader = AssignedReportReader(s.bootstrap, s.cfg.topics.reports)
    try:
        reader.wait_for(closed_windows(produced), timeout_s, procs=procs,
                        before_ms=end_ms(produced))
        time.sleep(1)
        reader.poll(1)
    finally:
        for p in procs:
            p.stop()
        reader.close()
    return judge(s, produced, reader, end_ms(produced)), reader


def crash_points(bootstrap: str, tmp: Path) -> Outcome:
    """Every fault point in turn, one armed run each, fed a window at a time until it ends
    there; then a clean run takes the rest."""
    s = setup(tmp, bootstrap, idle_timeout=600_000)
    feed = Feed(bootstrap, s.topic, scenario(60, seed=11), garbage_every=700)
    log = tmp / "monitor.log"
    exits = []
    for point, n in PLAN:
        m = Monitor(s, log, fault=f"{point}:{n}")
        m.wait_started(120)
        deadline = time.monotonic() + 150
        while m.alive() and time.monotonic() < deadline and not feed.done:
            feed.send(WINDOW_EVENTS)
            try:
                m.proc.wait(4)
            except subprocess.TimeoutExpired:
                pass
        code = m.wait_exit(max(1.0, deadline - time.monotonic()))
        exits.append((point, code, f"fault injected at {point}" in m.text()))
    assert not feed.done, "the plan used up the data: make the scenario longer"
    while not feed.done:
        feed.send(10 * WINDOW_EVENTS)
    verdict, _ = _finish(s, feed, log, [Monitor(s, log)])
    return Outcome(verdict, injected=len(exits), exits=exits,
                   want_bad=_want_bad(feed, end_ms(feed.produced())))


def _pump(feed: Feed, per_s: int, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        while not feed.done and not stop.is_set():
            feed.send(per_s // 4)
            time.sleep(0.25)
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def kill9(bootstrap: str, tmp: Path, kills: int = 5, seed: int = 20261201) -> Outcome:
    """``kill -9`` at seeded random moments while events flow: each kill lands 0.5-3 s
    after the monitor took its partitions, with the producer sending all the while (it stops
    a little after the last restart)."""
    s = setup(tmp, bootstrap, idle_timeout=600_000)
    feed = Feed(bootstrap, s.topic, scenario(150, seed=12), garbage_every=900)
    rng = random.Random(seed)
    log = tmp / "monitor.log"
    stop = threading.Event()
    mon = Monitor(s, log)
    mon.wait_log("assigned partitions", 120)
    pump = _pump(feed, 1500, stop)
    mid_flow, recovery = 0, []
    for _ in range(kills):
        time.sleep(rng.uniform(0.5, 3.0))
        mid_flow += not feed.done
        mon.kill9()
        t0 = time.monotonic()
        mon = Monitor(s, log)
        mon.wait_log("assigned partitions", 120)
        recovery.append(time.monotonic() - t0)
    time.sleep(2)
    stop.set()  # the data ends after the last kill: every kill lands while events flow
    pump.join()
    # the last judged window closes when every partition's watermark (its latest event time
    # minus the allowed lateness, 500 ms) passes the window's end: a pump stopped within 500
    # events of a window's start left it open until the idle timeout (1 stop in 8 failed)
    short = 600 - feed.sent % WINDOW_EVENTS
    if short > 0 and not feed.done:
        feed.send(short)
    verdict, _ = _finish(s, feed, log, [mon])
    return Outcome(verdict, injected=kills, recovery_s=recovery,
                   notes={"kills_while_flowing": mid_flow},
                   want_bad=_want_bad(feed, end_ms(feed.produced())))


def _owns(m: Monitor) -> list[int]:
    found = re.findall(r"assigned partitions \[([0-9, ]*)\]", m.text())
    return [int(x) for x in found[-1].split(",") if x.strip()] if found else []


def two_workers(bootstrap: str, tmp: Path) -> Outcome:
    """Two workers own partitions from the first event on; the second is killed at 60 % of
    the data and restarted. Reports must equal a one-worker run (replay of the same rows)."""
    from monitor.replay import replay

    s = setup(tmp, bootstrap, idle_timeout=600_000)
    feed = Feed(bootstrap, s.topic, scenario(30, seed=13), garbage_every=0)
    w1, w2 = Monitor(s, tmp / "w1.log"), Monitor(s, tmp / "w2.log")
    deadline = time.monotonic() + 120
    while not (_owns(w1) and _owns(w2)) or sorted(_owns(w1) + _owns(w2)) != [0, 1, 2, 3]:
        assert time.monotonic() < deadline, "the two workers never shared the partitions"
        assert w1.alive() and w2.alive()
        time.sleep(0.2)
    shares = (_owns(w1), _owns(w2))
    at60 = int(feed.n * 0.6)
    while feed.sent < at60:
        feed.send(min(1500, at60 - feed.sent))
        time.sleep(0.25)
    w2.kill9()
    w2 = Monitor(s, tmp / "w2.log")
    while not feed.done:
        feed.send(1500)
        time.sleep(0.25)
    verdict, reader = _finish(s, feed, tmp / "w1.log", [w1, w2])
    produced = only_before(feed.produced(), end_ms(feed.produced()))
    one = {r.window_start_ms: r.to_dict() for r in replay(s.cfg, s.profile, produced.table())}
    differ = []
    for w, copies in reader.copies.items():
        if w in one:
            a, b = comparable(copies[0]), comparable(one[w])
            if (a["events"], a["sketch_digest"]) != (b["events"], b["sketch_digest"]) or \
                    [c["flagged"] for c in a["checks"]] != [c["flagged"] for c in b["checks"]]:
                differ.append(w)
    return Outcome(verdict, injected=1, notes={"shares": shares, "differ_from_one_worker":
                                               differ})


def broker_restarts(tmp: Path, restarts: tuple[bool, ...] = (False, True, False),
                    down_s: float = 4.0) -> Outcome:
    """A broker of its own, stopped three times (SIGTERM, SIGKILL, SIGTERM) while events are
    produced and consumed. The test producer waits out every outage (no message timeout),
    so everything it sent is acknowledged and must be counted exactly once. Recovery: from
    the broker answering again to the next window reported, with no manual restart."""
    from monitor.dev.kafka import DevKafka

    broker = DevKafka(data_dir=tmp / "kafka", heap="512m").start()
    try:
        s = setup(tmp, broker.bootstrap, idle_timeout=600_000)
        feed = Feed(broker.bootstrap, s.topic, scenario(45, seed=14), garbage_every=0)
        log = tmp / "monitor.log"
        mon = Monitor(s, log)
        mon.wait_log("assigned partitions", 120)  # stage 2 may still be starting: it copes
        stop = threading.Event()
        pump = _pump(feed, 1200, stop)
        reader = AssignedReportReader(broker.bootstrap, s.cfg.topics.reports)
        recovery = []
        limit = s.cfg.kafka.session_timeout_ms / 1000 + 30
        for kill in restarts:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 3:
                reader.poll(0.5)
            broker.stop(kill=kill)
            time.sleep(down_s)
            broker.start()
            up, seen = time.monotonic(), len(reader.copies)
            while len(reader.copies) == seen and time.monotonic() - up < limit + 60:
                reader.poll(0.5)
                assert mon.alive(), f"monitor died: {mon.text()[-3000:]}"
            recovery.append(time.monotonic() - up)
        pump.join()
        reader.close()
        verdict, _ = _finish(s, feed, log, [mon])
        return Outcome(verdict, injected=len(restarts), recovery_s=recovery,
                       notes={"limit_s": limit, "alive": True})
    finally:
        broker.stop()
