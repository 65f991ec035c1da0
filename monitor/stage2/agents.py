"""Stage 2 as a Faust app: one thin agent, a runner that makes each step atomic.

The agent receives partials messages in topic order and hands each one, with its offset, to
:class:`Stage2Runner`. The runner computes the step (:class:`~monitor.stage2.step.Stage2Step`,
plain Python, in a worker thread so Faust's heartbeats keep running) and commits it in one
Kafka transaction together with its reports and alerts
(:class:`~monitor.stage2.state.TransactionalState`; the module docstring there says why
transactions). Only then does the agent move on, and only then may Faust commit the offset.

A step that fails — an exception in the evaluation, a broker outage, a fenced producer — is
never skipped: Faust would ack the message of an agent that raises (faust-streaming #315,
#527) and the window would be lost. The runner reloads the committed state and tries the
same message again with backoff, for as long as it takes, and says so in :attr:`health`,
which the process's ``/health`` and supervisor read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import faust

from monitor.faults import fault_point
from monitor.stage2.state import ReportFile, TransactionalState
from monitor.stage2.step import Stage2State, Stage2Step

log = logging.getLogger("streamdrift.agents")


class Stage2Runner:
    """``handle(offset, value)``: one atomic step; :attr:`health` says how it goes."""

    def __init__(self, step: Stage2Step, store: TransactionalState,
                 report_file: ReportFile | None = None,
                 on_committed: Callable[[list[Any]], None] | None = None,
                 max_backoff_s: float = 30.0) -> None:
        self.step = step
        self.store = store
        self.report_file = report_file
        self.on_committed = on_committed
        self.max_backoff_s = max_backoff_s
        self.state: Stage2State | None = None  # None: read it back before the next step
        self.windows_closed = 0
        self.scores: dict[tuple[str, str], float] = {}  # the last report's effect sizes
        self.alerts_firing: dict[str, int] = {}  # severity -> alert keys firing now
        self.steps = 0
        self.failures = 0            # consecutive failed attempts of the current message
        self.failures_total = 0
        self.last_error: str | None = None
        self.stage_health: Any = None  # a monitor.supervise.StageHealth, set by the pipeline
        self.give_up_after = 10  # consecutive failures (~4 min of backoff): end the process
        self._lock = threading.Lock()  # one step at a time, in a worker thread
        self._reload = False  # set on the loop by invalidate(): read the state back first

    def __repr__(self) -> str:
        return f"Stage2Runner(store={self.store!r}, steps={self.steps})"

    @property
    def health(self) -> dict[str, Any]:
        """``ok`` is False while the current message keeps failing."""
        return {"ok": self.failures == 0, "failures": self.failures,
                "failures_total": self.failures_total, "last_error": self.last_error,
                "steps": self.steps, "windows_closed": self.windows_closed}

    def invalidate(self) -> None:
        """Read the state back before the next step (a partition was (re)assigned).

        Called on Faust's event loop (the assignment signal): it only raises a flag and never
        waits for :attr:`_lock`, which a step stuck in a broker outage holds for minutes
        (commit retries, ``init_transactions``); waiting there would stall the loop, and with
        it the consumer's heartbeats and every other agent."""
        self._reload = True

    def handle(self, offset: int, value: bytes) -> None:
        """Absorb one partials message: commit its step, or raise with nothing changed."""
        with self._lock:
            if self.state is None or self._reload:
                self._reload = False  # before the load: an invalidate during it counts
                self.state = None
                self.state = self.store.load()
            r = self.step(self.state, offset, value)
            if r is None:
                return  # absorbed before a crash: already committed
            fault_point("stage2.before_table_advance")  # merged, nothing committed
            self.store.commit(self.state, r)
            fault_point("stage2.after_report")  # state, reports, alerts committed
            self.steps += 1
            self.windows_closed += len(r.reports)
        if r.reports:
            if self.step.policy is not None:
                firing = list(self.step.policy.firing.values())
                self.alerts_firing = {sev: firing.count(sev) for sev in ("warning", "critical")}
            self.scores = {(c.check, c.feature): float(c.effect_size)
                           for c in r.reports[-1].checks if c.effect_size is not None}
            if self.report_file is not None:
                self.report_file.write(r.reports)
            if self.on_committed is not None:
                self.on_committed(r.reports)
            for rep in r.reports:
                log.info("window %s closed: %d events, flagged %s", rep.window_start_ms,
                         rep.events, sorted({c.feature for c in rep.flagged}))

    async def handle_until_done(self, offset: int, value: bytes,
                                owner: Callable[[], bool] = lambda: True) -> None:
        """``handle`` in a worker thread, retried with backoff until it commits, or until
        ``owner()`` says the partials partition went to another worker (which then takes
        the message from its own committed state: retrying here would fence it)."""
        delay = 0.5
        while True:
            if self.failures and not owner():
                log.warning("partials partition revoked: leaving offset %d to its new owner",
                            offset)
                self.failures = 0
                self.invalidate()
                return
            try:
                await asyncio.to_thread(self.handle, offset, value)
            except Exception as e:  # never skip a message: report, reload, retry
                self.failures += 1
                self.failures_total += 1
                self.last_error = f"{type(e).__name__}: {e}"
                log.error("stage 2 step at offset %d failed (attempt %d), retrying in %.1fs:"
                          " %s", offset, self.failures, delay, self.last_error,
                          exc_info=self.failures == 1)
                self.invalidate()
                final = self.failures >= self.give_up_after
                if self.stage_health is not None:
                    self.stage_health.failed(e, final=final)
                if final:  # the service manager restarts the process; the state is safe
                    from monitor.supervise import give_up

                    give_up("aggregate", e)
                await asyncio.sleep(delay)
                delay = min(self.max_backoff_s, delay * 2)
                continue
            if self.failures and self.stage_health is not None:
                self.stage_health.running()
            self.failures = 0
            return

    def run_messages(self, messages) -> None:
        """Feed ``(offset, value)`` pairs synchronously (tests and tools), no retry."""
        for offset, value in messages:
            self.handle(offset, value)


def build_app(*, app_id: str, broker: str, broker_credentials: Any = None,
              partials_topic: str, runner: Stage2Runner,
              session_timeout_s: float = 10.0, data_dir: str | None = None,
              web_port: int | None = None) -> faust.App:
    """A Faust app running stage 2: its only agent feeds ``runner``."""
    app = faust.App(
        app_id,
        broker=broker,
        broker_credentials=broker_credentials,
        store="memory://",
        topic_partitions=1,
        topic_replication_factor=1,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_host="127.0.0.1",
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=max(0.3, session_timeout_s / 10),
        broker_commit_every=1,
        # aiokafka looks a topic it could not see up again only at this refresh (default
        # 5 min): stage 2 would sit idle that long (monitor/stage2/worker.py)
        consumer_metadata_max_age_ms=int(session_timeout_s * 1000),
        consumer_auto_offset_reset="earliest",
        datadir=data_dir or f"/tmp/streamdrift-faust-{app_id}",
        producer_max_request_size=20_000_000,
        stream_wait_empty=False,
    )
    raw = faust.Schema(key_type=str, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    topic = app.topic(partials_topic, schema=raw, partitions=1)

    @app.on_partitions_assigned.connect
    async def on_assigned(app, assigned, **kwargs) -> None:  # noqa: ARG001 - Faust signal
        runner.invalidate()  # another worker may have moved the state on meanwhile

    @app.agent(topic)
    async def windows(stream):  # noqa: D401 - a Faust agent
        async for event in stream.events():
            started = time.monotonic()
            tp = event.message.tp
            await runner.handle_until_done(event.message.offset, event.value,
                                           owner=lambda: tp in app.consumer.assignment())
            if time.monotonic() - started > session_timeout_s:
                log.warning("a stage 2 step took %.1fs", time.monotonic() - started)

    app.streamdrift_runner = runner  # for tests and the metrics endpoint
    return app
