"""Supervision: a stage whose loop raises is restarted with backoff; one that keeps failing
ends the process with a non-zero exit, so systemd or Kubernetes restart it.

Each stage of a process (``source``, ``aggregate``, ``sinks:<name>``) has a
:class:`StageHealth` in one :class:`Health` registry. ``/health`` answers from it in every
``--stage`` mode: 200 when every stage runs, 503 naming each stage that is failing,
restarting or waiting on Kafka, with its last error. ``/metrics`` counts restarts from it.

Restart policy: after a failure the stage waits ``backoff`` (doubling from ``backoff_s`` up
to ``max_backoff_s``) and is built anew by its factory (new clients, state reloaded from
Kafka: stage 1 resumes from its last acknowledged state). More than ``max_failures``
failures within ``window_s`` and the process exits with :data:`EXIT_GAVE_UP`.

>>> h = Health()
>>> s = h.stage("source")
>>> s.failed(ValueError("boom"))
>>> h.problems()
{'source': 'restarting after ValueError: boom'}
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("streamdrift.supervise")

EXIT_GAVE_UP = 70  # EX_SOFTWARE


@dataclass
class StageHealth:
    name: str
    state: str = "starting"  # starting | running | restarting | failed
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None  # wall clock
    ready: Callable[[], bool] | None = None  # e.g. stage 1 owns partitions
    errors_by_kind: dict[str, int] = field(default_factory=dict)

    def running(self) -> None:
        self.state = "running"

    def failed(self, exc: BaseException, final: bool = False) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        self.last_error_at = time.time()
        kind = type(exc).__name__
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1
        self.state = "failed" if final else "restarting"

    def problem(self) -> str | None:
        if self.state in ("restarting", "failed"):
            return f"{self.state} after {self.last_error}"
        if self.state == "starting":
            return "starting"
        if self.ready is not None and not self.ready():
            return "not ready"
        return None


class Health:
    """The stages of this process and what is wrong with them."""

    def __init__(self) -> None:
        self.stages: dict[str, StageHealth] = {}
        self.extra_checks: list[Callable[[], dict[str, str]]] = []

    def stage(self, name: str) -> StageHealth:
        return self.stages.setdefault(name, StageHealth(name))

    def problems(self) -> dict[str, str]:
        out = {n: p for n, s in self.stages.items() if (p := s.problem()) is not None}
        for check in self.extra_checks:
            out.update(check())
        return out

    def to_dict(self) -> dict[str, Any]:
        problems = self.problems()
        waiting = all(p in ("starting", "not ready") for p in problems.values())
        return {"status": "ok" if not problems else "starting" if waiting else "failing",
                "problems": problems,
                "stages": {n: {"state": s.state, "restarts": s.restarts,
                               "last_error": s.last_error, "last_error_at": s.last_error_at}
                           for n, s in sorted(self.stages.items())}}


def give_up(name: str, exc: BaseException) -> None:
    """Log loudly and end the process non-zero (no clean shutdown: state is crash-safe)."""
    msg = (f"streamdrift: stage {name} keeps failing, last error {type(exc).__name__}: "
           f"{exc}; exiting with {EXIT_GAVE_UP} so the service manager restarts the process")
    log.critical(msg)
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
    os._exit(EXIT_GAVE_UP)


class Supervisor:
    """Runs ``make().run(stop)`` in a thread, restarting it on failure (module doc)."""

    def __init__(self, name: str, make: Callable[[], Any], health: Health, *,
                 backoff_s: float = 1.0, max_backoff_s: float = 30.0, max_failures: int = 5,
                 window_s: float = 300.0,
                 on_give_up: Callable[[str, BaseException], None] = give_up) -> None:
        self.name = name
        self.make = make
        self.health = health.stage(name)
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.max_failures, self.window_s = max_failures, window_s
        self.on_give_up = on_give_up
        self.current: Any = None
        self._failures: list[float] = []
        self.thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> Supervisor:
        self.thread = threading.Thread(target=self.run, args=(stop,), daemon=True,
                                       name=f"stage-{self.name}")
        self.thread.start()
        return self

    def run(self, stop: threading.Event) -> None:
        backoff = self.backoff_s
        while not stop.is_set():
            try:
                self.current = self.make()
                self.health.running()
                self.current.run(stop)
                return
            except (KeyboardInterrupt, SystemExit):
                raise
            except:  # noqa: E722 - every failure is restarted or fatal, even confluent-kafka's
                # KafkaError, which it raises as is although it is no Exception subclass
                e = _as_exception(sys.exc_info()[1])
                now = time.monotonic()
                self._failures = [t for t in self._failures if now - t < self.window_s] + [now]
                final = len(self._failures) > self.max_failures
                self.health.failed(e, final=final)
                log.error("stage %s failed (%d in %.0f s): %s\n%s", self.name,
                          len(self._failures), self.window_s, e, traceback.format_exc())
                if final:
                    self.on_give_up(self.name, e)
                    return
                self.health.restarts += 1
                if stop.wait(backoff):
                    return
                backoff = min(self.max_backoff_s, backoff * 2)


def _as_exception(e: object) -> BaseException:
    """``e`` itself, or a RuntimeError carrying its text when it is not an exception (a
    ``confluent_kafka.KafkaError`` raised by the client)."""
    return e if isinstance(e, BaseException) else RuntimeError(str(e))
