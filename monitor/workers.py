"""Stage 1 on every core: N stage-1 processes under one worker (``run --source-processes N``).

Stage 1 runs one Python thread, so one process uses about one core. With ``N > 1`` the worker
starts N child processes, each with its own consumer (a member of the same consumer group),
its own per-partition state and outbox, exactly as N single-process workers would: the group
spreads the partitions over them and a rebalance moves a partition's state with it (stage
1's state is per partition and stored in Kafka; see :mod:`monitor.stage1.source`). Stage 2
and the sinks stay in the parent.

Supervision: inside a child, its stage-1 loop is restarted with backoff like the
single-process stage (:class:`~monitor.supervise.Supervisor`); a child that ends (it gave up,
or was killed) is started again by the parent with backoff, through the same supervisor, one
per child (``source-0`` ... ``source-N-1`` in ``/health``). A child whose parent is gone stops.

Metrics: every half second each child sends its :class:`~monitor.stage1.source.SourceStats`
to the parent, which sums them for ``/metrics`` (counters of a child's earlier lives are
kept, so a restart never makes a counter go back) and lists the partitions per child.

>>> total = SourceStats()
>>> add_stats(total, {"events_in": 5, "bad_events": {"malformed": 1}, "partials_sent": 2,
...                   "batches": 1, "decode_fallback_messages": 0,
...                   "consumer_lag": {"3": 7}, "watermark_delay_ms": {}})
>>> total.events_in, total.bad_events, total.consumer_lag
(5, {'malformed': 1}, {3: 7})
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

from monitor.stage1.source import SourceStats
from monitor.supervise import Health, Supervisor

log = logging.getLogger("streamdrift.workers")

_COUNTERS = ("events_in", "partials_sent", "batches", "decode_fallback_messages")
REPORT_EVERY_S = 0.5


class ChildEnded(RuntimeError):
    """A stage-1 process ended while the worker still runs (the supervisor restarts it)."""


def add_stats(total: SourceStats, s: dict[str, Any]) -> None:
    """Add one child's stats (as sent over the pipe) to ``total``."""
    for k in _COUNTERS:
        setattr(total, k, getattr(total, k) + int(s.get(k, 0)))
    for reason, n in s.get("bad_events", {}).items():
        total.bad_events[reason] = total.bad_events.get(reason, 0) + n
    for k in ("consumer_lag", "watermark_delay_ms"):  # gauges of disjoint partitions
        getattr(total, k).update({int(p): v for p, v in s.get(k, {}).items()})


class SourceProcess:
    """One stage-1 child. ``run(stop)`` starts it and relays its stats until ``stop`` (then
    stops it cleanly) or until it ends (then raises :class:`ChildEnded`)."""

    def __init__(self, cfg: Any, index: int, loglevel: str = "info") -> None:
        self.cfg, self.index, self.loglevel = cfg, index, loglevel
        self.stats: dict[str, Any] = {}
        self.assigned = False
        self.partitions: list[int] = []
        self.pid: int | None = None

    def run(self, stop: threading.Event) -> None:
        ctx = multiprocessing.get_context("spawn")  # no forked librdkafka threads
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=child_main, name=f"streamdrift-source-{self.index}",
                           args=(self.cfg, self.index, send, self.loglevel, os.getpid()),
                           daemon=True)
        proc.start()
        send.close()
        self.pid = proc.pid
        log.info("stage-1 process %d started (pid %d)", self.index, proc.pid)
        try:
            while not stop.is_set() and proc.is_alive():
                try:
                    if recv.poll(REPORT_EVERY_S):
                        msg = recv.recv()
                        self.stats, self.assigned = msg["stats"], msg["assigned"]
                        self.partitions = msg["partitions"]
                except (EOFError, OSError):  # the child is gone; is_alive() says so next
                    proc.join(1)
        finally:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the child stores its state and leaves the group
                proc.join(20)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
            recv.close()
            self.assigned = False
        if not stop.is_set():
            raise ChildEnded(f"stage-1 process {self.index} (pid {proc.pid}) ended with exit "
                             f"code {proc.exitcode}")


def child_main(cfg: Any, index: int, conn: Any, loglevel: str, parent_pid: int) -> None:
    """A stage-1 process: the supervised source stage, its stats sent to the parent."""
    from monitor.config import kafka_client_config
    from monitor.stages import load_profile, make_source

    logging.basicConfig(level=loglevel.upper() if loglevel != "warn" else "WARNING",
                        format=f"%(asctime)s source-{index} %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    profile = load_profile(cfg)
    client = kafka_client_config(cfg)
    sup = Supervisor("source", lambda: make_source(cfg, profile, client), Health()).start(stop)
    while not stop.wait(REPORT_EVERY_S):
        if os.getppid() != parent_pid:  # the worker died (kill -9): do not linger
            stop.set()
            break
        src = sup.current
        try:
            conn.send({"stats": dataclasses.asdict(src.stats) if src is not None else {},
                       "assigned": bool(src is not None and src.assigned),
                       "partitions": sorted(src.parts) if src is not None else []})
        except (BrokenPipeError, OSError):
            stop.set()
    if sup.thread is not None:
        sup.thread.join(30)


class SourceProcesses:
    """N supervised stage-1 children, seen by the parent as one source: ``stats`` (summed)
    and ``assigned`` (every child has joined the group), as the single-process stage."""

    def __init__(self, cfg: Any, n: int, health: Health, loglevel: str = "info") -> None:
        self.children = [SourceProcess(cfg, i, loglevel) for i in range(n)]
        self._retired = [SourceStats() for _ in range(n)]  # counters of earlier lives
        self.supervisors = [Supervisor(f"source-{i}", self._factory(i), health)
                            for i in range(n)]

    def _factory(self, i: int):
        def make() -> SourceProcess:
            old = self.children[i]
            if old.stats:  # a restart: keep what the dead child counted
                add_stats(self._retired[i], {k: v for k, v in old.stats.items()
                                             if k not in ("consumer_lag", "watermark_delay_ms")})
                old.stats = {}
            return old
        return make

    def start(self, stop: threading.Event) -> SourceProcesses:
        for i, sup in enumerate(self.supervisors):
            sup.health.ready = lambda c=self.children[i]: c.assigned
            sup.start(stop)
        return self

    @property
    def assigned(self) -> bool:
        return all(c.assigned for c in self.children)

    @property
    def stats(self) -> SourceStats:
        total = SourceStats()
        for retired, child in zip(self._retired, self.children):
            add_stats(total, dataclasses.asdict(retired))
            add_stats(total, child.stats)
        return total

    @property
    def partitions(self) -> dict[str, list[int]]:
        return {f"source-{c.index}": c.partitions for c in self.children}

    def join(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        for sup in self.supervisors:
            if sup.thread is not None:
                sup.thread.join(max(0.0, deadline - time.monotonic()))
