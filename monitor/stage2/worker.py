"""Stage 2's Faust worker as a supervised stage: a start that fails is retried.

aiokafka bootstraps once: ``AIOKafkaClient.bootstrap`` tries each bootstrap host a single
time and raises ``KafkaConnectionError("Unable to bootstrap ...")`` when none answers, and
Faust's worker lets that end its start (mode's ``Worker.execute_from_commandline`` logs
``[^Worker]: Error``, closes the event loop and exits 1; faust #711 and the aiokafka
reports say the same). Once started, Faust and aiokafka ride out broker outages themselves.
So only the start needs a retry: a broker that is down or restarting while stage 2 starts
(CI: the broker went down between the preflight and Faust's bootstrap) would otherwise end
the process.

:class:`FaustStage` runs one worker on a fresh event loop in the calling (main) thread, as
Faust needs for its signal handlers. When the start fails before the worker said Ready, it
raises the start's error, and :class:`monitor.supervise.Supervisor` (called in this thread
with :meth:`Supervisor.run`) builds a new app and tries again with backoff (1 s doubling to
30 s), showing ``restarting after KafkaConnectionError ...`` in ``/health``. Ten failed starts
within ten minutes (about three minutes of backoff: :data:`START_GIVE_UP`) end the process
with exit code 70, so the service manager restarts it. A worker that did start and then ends
(a signal, or Faust's own fatal error) ends stage 2 with the worker's exit code: its state is
in Kafka (:mod:`monitor.stage2.state`) and a restart resumes it.

A worker can also run and see nothing: aiokafka drops a topic it could not get metadata for
(the broker restarting while stage 2 subscribes, the topic not created yet), the group's
assignment then leaves it out ("Ignoring missing topic", an empty assignment), and aiokafka
looks again only at its next periodic metadata refresh — every five minutes by default
(aiokafka's ``metadata_max_age_ms``; the Java client refreshes at once, KAFKA-4631). Stage 2
refreshes every ``kafka.session_timeout_ms`` instead (:func:`monitor.stage2.agents.build_app`),
and :class:`FaustStage` watches for it: a topic stage 2 reads that its consumer's metadata has
not listed for ``2 * check_s`` is logged as a warning and shown in ``/health``
(:meth:`FaustStage.problems`) until it is seen again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import faust

log = logging.getLogger("streamdrift.stage2.worker")

# Supervisor settings of stage 2's start: (max_failures, window_s, backoff_s, max_backoff_s)
START_GIVE_UP = (10, 600.0, 1.0, 30.0)


class Worker(faust.Worker):
    """A Faust worker that records whether it got to Ready, and why its start failed (named
    ``Worker`` so that its log lines read ``[^Worker]: Ready`` as Faust's own do)."""

    ready = False
    start_error: BaseException | None = None

    async def on_startup_finished(self) -> None:
        self.ready = True
        await super().on_startup_finished()

    async def start(self) -> None:
        try:
            await super().start()
        except Exception as e:
            if not self.ready:
                self.start_error = e
            raise


class StageStartFailed(RuntimeError):
    """Stage 2's Faust worker ended before it was Ready (its error is the cause)."""


class FaustStage:
    """``run(stop)``: one Faust worker of ``make_app()``; raises when its start failed.

    ``topics``: the topics stage 2 reads, watched every ``check_s`` (module doc)."""

    def __init__(self, make_app: Callable[[], faust.App], loglevel: str = "info",
                 topics: tuple[str, ...] = (), check_s: float = 5.0) -> None:
        self.make_app = make_app
        self.loglevel = loglevel
        self.topics = topics
        self.check_s = check_s
        self.exit_code: int | None = None
        self.app: Any = None
        self.unseen: list[str] = []  # topics the consumer has not seen for 2 * check_s

    def problems(self) -> dict[str, str]:
        """For ``/health``: the topics stage 2 reads but its consumer does not see."""
        if not self.unseen:
            return {}
        return {"aggregate:topics": f"stage 2's consumer does not see {', '.join(self.unseen)} "
                                    "in the broker's metadata (it looks again every "
                                    "kafka.session_timeout_ms)"}

    def run(self, stop: Any = None) -> None:  # noqa: ARG002 - Faust stops on its signals
        loop = asyncio.new_event_loop()  # the previous attempt closed its loop
        asyncio.set_event_loop(loop)
        self.app = self.make_app()
        self.unseen = []
        if self.topics:
            self._watch_topics(self.app)
        worker = Worker(self.app, loop=loop, loglevel=self.loglevel, quiet=True,
                         redirect_stdouts=False)
        try:
            worker.execute_from_commandline()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not worker.ready and (worker.start_error is not None or code != 0):
            e = (worker.start_error or worker.crash_reason
                 or RuntimeError(f"the worker exited with {code}"))
            raise StageStartFailed(f"stage 2 did not start: {type(e).__name__}: {e}") from e
        self.exit_code = code

    def _watch_topics(self, app: faust.App) -> None:
        missing_since: dict[str, float] = {}

        @app.timer(self.check_s, name="streamdrift.watch_topics")
        async def watch_topics() -> None:
            now = time.monotonic()
            for t in self.topics:
                if _partitions_seen(app, t) == 0:
                    missing_since.setdefault(t, now)
                else:
                    missing_since.pop(t, None)
            unseen = sorted(t for t, t0 in missing_since.items() if now - t0 >= 2 * self.check_s)
            for t in set(unseen) - set(self.unseen):
                log.warning("stage 2's consumer does not see topic %s in the broker's metadata "
                            "(for %.0f s): nothing of it is processed until it does", t,
                            now - missing_since[t])
            for t in set(self.unseen) - set(unseen):
                log.info("stage 2's consumer sees topic %s again", t)
            self.unseen = unseen


def _partitions_seen(app: faust.App, topic: str) -> int | None:
    """The topic's partition count in the consumer's metadata snapshot: 0 = subscribed but
    not listed by the broker, None = not known yet (the consumer is still starting)."""
    try:
        n = app.consumer.topic_partitions(topic)
    except AttributeError:  # aiokafka's consumer not started: no coordinator yet
        return None
    return n if isinstance(n, int) else None
