"""Wiring: one validated config in, the running stages out.

``streamdrift run`` calls :func:`run`; tests and the demo call the same functions. Nothing
here decides anything: it builds the pieces (profile, decoder, stage 1, stage 2, evaluator,
alert policy, sinks) from the config and connects them.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
from typing import Any


from monitor import __version__
from monitor.config import MonitorConfig, kafka_client_config
from monitor.sinks.from_config import make_sinks, sink_problems, stage_problems
from monitor.stages import (  # noqa: F401  (importers of monitor.pipeline use them too)
    load_profile, make_decoder, make_label_side, make_performance_step, make_source,
    make_stage2, make_stage2_app, make_stage2_runner, merge_sketches, quality_bounds,
    window_parts)
from monitor.topics import ensure_topics  # noqa: F401  (topic policies live there)

log = logging.getLogger("streamdrift")


def status_page(cfg: MonitorConfig, client: dict[str, Any], source, publisher, healthy,
                silences=None):
    """The status page (monitor/web/status.py) over the reports and alerts topics, with this
    process's stages' health: ``source()`` / ``publisher()`` give the running stages."""
    from monitor.web.history import History, TopicReader
    from monitor.web.status import StatusPage

    history = History()
    TopicReader(client, cfg.topics.reports, cfg.topics.alerts, history).start()

    def health() -> dict[str, Any]:
        s, p = source(), publisher()
        stages = {}
        if s is not None:
            stages["source"] = "ok" if healthy() else "starting"
        if p is not None:
            stages["aggregate"] = f"ok, {p.windows_closed} windows closed"
        return {"stages": stages,
                "consumer_lag": dict(s.stats.consumer_lag) if s is not None else {}}

    return StatusPage(history, health, lambda: [*cfg.alerts.silences,
                                                *(silences.current() if silences else [])])


def run(cfg: MonitorConfig, stage: str = "all", loglevel: str = "info",
        source_processes: int | None = None) -> int:
    """Run the monitor until SIGINT / SIGTERM. ``stage``: all | source | aggregate | sinks.
    Stage 1 runs in ``source_processes`` child processes (:mod:`monitor.workers`) when that
    is more than 1; None takes the config's ``stage1.processes``.

    Every thread-run stage is supervised (:mod:`monitor.supervise`): restarted with backoff
    when it fails, the process ended non-zero when it keeps failing. ``/health`` tells."""

    from monitor.checked_producer import DELIVERY_STATS
    from monitor.supervise import Health, Supervisor
    from monitor.web.http import StageCollector, serve

    client = kafka_client_config(cfg)
    profile = load_profile(cfg) if stage != "sinks" else None  # the sinks need no profile
    from monitor.access import preflight

    preflight(cfg, client, stage)  # connect, check ACLs, create topics: one line per problem
    stop = threading.Event()
    health = Health()
    health.extra_checks.append(_kafka_wait_check(cfg))
    supervisors: list[Supervisor] = []
    procs = None  # stage 1 in child processes (monitor/workers.py)
    if source_processes is None:
        source_processes = cfg.stage1.processes
    if stage in ("all", "source") and source_processes > 1:
        from monitor.workers import SourceProcesses

        procs = SourceProcesses(cfg, source_processes, health, loglevel).start(stop)
        supervisors += procs.supervisors
        atexit.register(lambda: (stop.set(), procs.join()))
    elif stage in ("all", "source"):
        src = Supervisor("source", lambda: make_source(cfg, profile, client), health)
        src.health.ready = lambda: src.current is not None and src.current.assigned
        supervisors.append(src.start(stop))

        def _stop_source() -> None:
            stop.set()
            if src.thread is not None:
                src.thread.join(15)

        atexit.register(_stop_source)
    sink_sups: list[Supervisor] = []
    if stage in ("all", "sinks"):
        for i, delivery in enumerate(_retrying(lambda: make_sinks(cfg, client))):
            first = [delivery]

            def make(i=i, first=first):
                return first.pop() if first else make_sinks(cfg, client)[i]

            sink_sups.append(Supervisor(f"sinks:{delivery.group_id}", make, health)
                             .start(stop))
    supervisors += sink_sups

    def deliveries() -> list:
        return [s.current for s in sink_sups if s.current is not None]

    health.extra_checks.append(lambda: sink_problems(deliveries()))
    publisher = None

    def source():
        if procs is not None:
            return procs
        return supervisors[0].current if stage in ("all", "source") else None

    def source_stats():
        s = source()
        return s.stats if s is not None else None

    def reports_stats():
        return ({} if publisher is None else
                {"windows_closed": publisher.windows_closed, "scores": publisher.scores,
                 "alerts_firing": publisher.alerts_firing})

    def healthy() -> bool:  # stage 1 (if here) joined its group
        s = source()
        return stage not in ("all", "source") or (s is not None and s.assigned)

    from monitor.stage2.silences import SilenceFollower

    silences = (SilenceFollower(client, cfg.topics.silences).start()  # shared by all workers
                if stage in ("all", "aggregate") else None)
    health.extra_checks.append(lambda: stage_problems(deliveries(), None))
    page = status_page(cfg, client, source, lambda: publisher, healthy, silences)
    server = serve(cfg.http.host, cfg.http.port,
                   StageCollector(cfg.monitor, source_stats, reports_stats,
                                  sinks=lambda: [d.sink.health for d in deliveries()],
                                  health=health, deliveries=DELIVERY_STATS),
                   healthy=healthy, health=health, routes=page.route)
    log.info("streamdrift %s: monitor %s on %s, stage %s, metrics at http://%s:%d/metrics, "
             "status page at http://%s:%d/", __version__, cfg.monitor, cfg.stream.topic, stage,
             cfg.http.host, server.server_address[1], cfg.http.host, server.server_address[1])
    if stage in ("all", "aggregate"):
        from monitor.stage2.worker import START_GIVE_UP, FaustStage

        runner = make_stage2_runner(cfg, profile, client, silences)
        runner.stage_health = health.stage("aggregate")  # the runner's failing steps

        def make_app():
            app = make_stage2_app(cfg, runner)
            _watch_agents(app, runner.stage_health)
            return app

        publisher = runner
        # a start that fails (broker down or restarting) is retried here, in the main
        # thread Faust needs; the process ends non-zero after the give-up (stage2/worker.py)
        faust_stage = FaustStage(make_app, loglevel, topics=(cfg.topics.partials,))
        health.extra_checks.append(faust_stage.problems)  # a topic stage 2 does not see
        n, window_s, backoff_s, max_backoff_s = START_GIVE_UP
        Supervisor("aggregate", lambda: faust_stage, health, backoff_s=backoff_s,
                   max_backoff_s=max_backoff_s, max_failures=n, window_s=window_s).run(stop)
        return faust_stage.exit_code or 0
    # source / sinks only: wait for a signal
    got = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: got.set())
    while not got.is_set() and not stop.is_set():
        got.wait(0.5)
    stop.set()
    for sup in supervisors:
        if sup.thread is not None:
            sup.thread.join(15)
    return 0


def _retrying(build, attempts: int = 5, backoff_s: float = 1.0):
    """``build()``, again with backoff when Kafka is not ready yet (a topic created a moment
    ago answers NOT_LEADER_FOR_PARTITION until its leader is elected); the last error
    propagates."""
    import time

    from confluent_kafka import KafkaException

    for attempt in range(attempts):
        try:
            return build()
        except KafkaException as e:
            if attempt == attempts - 1:
                raise
            log.warning("Kafka not ready (%s); retrying in %.0f s", e, backoff_s * 2 ** attempt)
            time.sleep(backoff_s * 2 ** attempt)
    raise AssertionError("unreachable")


def _watch_agents(app, h, max_failures: int = 5, window_s: float = 300.0) -> None:
    """Stage 2's agents run under Faust's supervisor, which restarts a crashed agent (after
    a few seconds): record each crash in /health and /metrics, and end the process when
    they keep crashing (:func:`monitor.supervise.give_up`)."""
    import time

    from monitor.supervise import give_up

    crashes: list[float] = []

    async def on_error(agent, exc: BaseException) -> None:
        now = time.monotonic()
        crashes[:] = [t for t in crashes if now - t < window_s] + [now]
        final = len(crashes) > max_failures
        h.failed(exc, final=final)
        h.restarts += 1
        log.error("stage 2 agent %s crashed (%d in %.0f s): %r", agent.name, len(crashes),
                  window_s, exc)
        if final:
            give_up("aggregate", exc)

    for agent in app.agents.values():
        agent._on_error = on_error  # Faust's hook; the constructor argument is not exposed


def _kafka_wait_check(cfg: MonitorConfig):
    """A /health problem while writes wait for Kafka longer than the session timeout."""
    from monitor.checked_producer import DELIVERY_STATS

    limit = cfg.kafka.session_timeout_ms / 1000.0

    def check() -> dict[str, str]:
        w = DELIVERY_STATS.longest_wait_s()
        return {"kafka": f"writes unacknowledged for {w:.0f} s"} if w > limit else {}

    return check
