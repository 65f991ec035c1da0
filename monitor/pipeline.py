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
from functools import partial
from pathlib import Path
from typing import Any


from monitor import __version__
from monitor.config import MonitorConfig, faust_broker_settings, kafka_client_config
from monitor.errors import StreamdriftError
from monitor.sinks.from_config import make_sinks, sink_problems, stage_problems
from monitor.topics import ensure_topics  # noqa: F401  (topic policies live there)

log = logging.getLogger("streamdrift")


def load_profile(cfg: MonitorConfig):
    """The reference profile; one line (what differs, how to rebuild it) if it is missing
    or was built for other features."""
    from monitor.profile import check_fits, read_profile

    path = Path(cfg.reference.profile)
    if not path.exists():
        raise StreamdriftError(
            f"reference.profile: no profile at {path}; build one with "
            f"`streamdrift profile build -c <config> --input <train.parquet> -o {path}`")
    profile = read_profile(path)
    check_fits(cfg, profile, path)
    return profile


def make_decoder(cfg: MonitorConfig, profile):
    from monitor.stage1.decode import Decoder

    cats = {name: list(profile.categories[name]) for name in cfg.features.categorical}
    fields = profile.metadata.get("fields") or ()
    return Decoder(cfg, cats, list(profile.groups), known_fields=tuple(fields))


def quality_bounds(cfg: MonitorConfig, profile):
    """The profile's learned ranges, with the config's ``range`` where a feature has one."""
    from kernels.quality import QualityBounds

    ranges = {n: cfg.feature(n).range for n in cfg.features.numeric
              if cfg.feature(n).range is not None}
    return QualityBounds.from_profile(profile, ranges=ranges,
                                      max_delay_ms=cfg.checks.quality.max_event_delay_ms or 0)


def window_parts(cfg: MonitorConfig, profile) -> dict[str, Any]:
    """What stage 1 needs to open windows: ``new_sketch``, ``load_sketch`` (the quality
    bounds of this config) and ``new_dedup`` (a duplicate filter when events have ids)."""
    from kernels import WindowSketch
    from kernels.dedup import DuplicateFilter

    bounds = quality_bounds(cfg, profile)
    on = cfg.checks.quality.enabled
    return {"new_sketch": lambda: WindowSketch.empty(profile, bounds, on),
            "load_sketch": lambda b: WindowSketch.from_bytes(b, profile, bounds, on),
            "new_dedup": DuplicateFilter if cfg.stream.event_id_field and on else None}


def make_source(cfg: MonitorConfig, profile, client: dict[str, Any]):
    from monitor.stage1.dead_letter import dead_letter_copy
    from monitor.stage1.event_time import TimeUnitCheck
    from monitor.stage1.source import SourceStage

    decoder = make_decoder(cfg, profile)
    et = cfg.stream.event_time
    w = cfg.windows
    return SourceStage(
        client_config=client, group_id=cfg.kafka.group_id, topic=cfg.stream.topic,
        monitor=cfg.monitor, **window_parts(cfg, profile),
        decode=TimeUnitCheck(decoder.decode, et and et.field, et.unit if et else "ms"),
        profile_id=profile.profile_id, size_ms=w.size_ms, slide_ms=w.slide_ms,
        lateness_ms=w.allowed_lateness_ms, idle_timeout_ms=w.idle_timeout_ms,
        partials_topic=cfg.topics.partials, state_topic=cfg.topics.state,
        dead_letter_topic=cfg.topics.dead_letter, batch_size=cfg.stream.batch_size,
        snapshot_interval_s=cfg.stream.snapshot_interval_ms / 1000.0,
        session_timeout_ms=cfg.kafka.session_timeout_ms, start_from=cfg.stream.start_from,
        dead_letter_copy=partial(dead_letter_copy, cfg.dead_letter),
        max_future_skew_ms=cfg.stream.max_future_skew_ms, labels=make_label_side(cfg, profile))


def make_label_side(cfg: MonitorConfig, profile):
    """Stage 1's label join (monitor/stage1/label_source.py), or None without ``labels:``."""
    if cfg.labels is None:
        return None
    from monitor.replay_labels import prediction_columns, slicing
    from monitor.stage1.label_source import LabelSide

    lab, w = cfg.labels, cfg.windows
    cells, _, _, rows = slicing(cfg, profile)
    return LabelSide(topic=lab.topic, id_field=lab.id_field, label_field=lab.label_field,
                     event_time_field=lab.event_time_field, positive_label=lab.positive_label,
                     window_ms=w.size_ms, lateness_ms=w.allowed_lateness_ms,
                     max_delay_ms=lab.max_delay_ms, cells=cells,
                     columns=partial(prediction_columns, cfg, rows=rows),
                     emit_interval_s=cfg.stream.snapshot_interval_ms / 1000.0)


def make_performance_step(cfg: MonitorConfig, profile):
    """Stage 2's side of the label join (monitor/stage2/performance_step.py), or None."""
    if cfg.labels is None:
        return None
    from monitor.replay_labels import load_reference, slicing
    from monitor.stage2.performance import PerformanceRules
    from monitor.stage2.performance_step import PerformanceStep

    lab = cfg.labels
    cells, slices, groups, _ = slicing(cfg, profile)
    return PerformanceStep(
        monitor=cfg.monitor, cells=cells, slices=slices, groups=groups,
        model=cfg.model.identity(),
        rules=PerformanceRules(min_labelled=lab.min_labelled, alpha=lab.checks.alpha,
                               max_drop=lab.checks.max_drop, floors=dict(lab.checks.floors),
                               min_slice=lab.slices.min_size),
        reference=load_reference(cfg, cells, slices),
        slice_keys=list(lab.slices.keys),
        min_group=cfg.sensitive.min_group_events if cfg.sensitive else 0,
        monitor_version=__version__)


def merge_sketches(blobs: list[bytes], load_sketch):
    """Partition order in, one merged sketch out (the order is fixed by the caller)."""
    merged = load_sketch(blobs[0])
    for b in blobs[1:]:
        merged = merged.merge(load_sketch(b))
    return merged


def make_stage2(cfg: MonitorConfig, profile, client: dict[str, Any], silences=None):
    """Stage 2's Faust app and its runner: each step (window bookkeeping, reports, alert
    policy, rolling reference) is committed in one Kafka transaction."""
    runner = make_stage2_runner(cfg, profile, client, silences)
    return make_stage2_app(cfg, runner), runner


def make_stage2_app(cfg: MonitorConfig, runner):
    """A Faust app feeding ``runner`` (a new one for each start of the worker)."""
    from monitor.stage2.agents import build_app

    broker = faust_broker_settings(cfg)
    return build_app(
        app_id=f"{cfg.kafka.group_id}-stage2", broker=broker["broker"],
        broker_credentials=broker["broker_credentials"], partials_topic=cfg.topics.partials,
        runner=runner, session_timeout_s=cfg.kafka.session_timeout_ms / 1000.0)


def make_stage2_runner(cfg: MonitorConfig, profile, client: dict[str, Any], silences=None):
    """Stage 2's runner: its step, its transactional state and its report file."""
    from monitor.stage2.agents import Stage2Runner
    from monitor.stage2.evaluate import Evaluator, policy_from_config
    from monitor.stage2.silences import SilenceFollower
    from monitor.stage2.state import ReportFile, TransactionalState
    from monitor.stage2.step import Stage2Step

    policy = policy_from_config(cfg)
    evaluator = Evaluator(cfg, profile, policy)
    load = window_parts(cfg, profile)["load_sketch"]
    follower = silences or SilenceFollower(client, cfg.topics.silences).start()

    def set_rolling(d) -> None:
        evaluator.rolling = d

    step = Stage2Step(
        size_ms=cfg.windows.size_ms, slide_ms=cfg.windows.slide_ms,
        merge=lambda blobs: merge_sketches(blobs, load),
        history=cfg.checks.quality.volume_baseline_windows, evaluate=evaluator.report,
        policy=policy, silences=lambda: [*cfg.alerts.silences, *follower.current()],
        rolling=lambda: evaluator.rolling, set_rolling=set_rolling, load_sketch=load,
        performance=make_performance_step(cfg, profile))
    store = TransactionalState(client, state_topic=cfg.topics.stage2_state,
                               reports_topic=cfg.topics.reports, alerts_topic=cfg.topics.alerts,
                               transactional_id=f"{cfg.kafka.group_id}-stage2")
    return Stage2Runner(step, store, ReportFile(cfg.output.reports_jsonl)
                        if cfg.output.reports_jsonl else None)


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
        source_processes: int = 1) -> int:
    """Run the monitor until SIGINT / SIGTERM. ``stage``: all | source | aggregate | sinks.
    ``source_processes`` > 1 runs stage 1 in that many child processes (:mod:`monitor.workers`).

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
        faust_stage = FaustStage(make_app, loglevel)
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
