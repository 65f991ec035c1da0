"""The pieces of the running monitor, each built from one validated config: the reference
profile, stage 1's source (with its decoder, windows and label side), stage 2's runner and
Faust app. :mod:`monitor.pipeline` connects them; the benches, replay and the stage-1 child
processes (:mod:`monitor.workers`) build the same pieces here.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.config import MonitorConfig, faust_broker_settings
from monitor.errors import StreamdriftError
from monitor.stage1.decode import decoder_for as make_decoder

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
    parts = {"new_sketch": lambda: WindowSketch.empty(profile, bounds, on),
             "load_sketch": lambda b: WindowSketch.from_bytes(b, profile, bounds, on),
             "new_dedup": DuplicateFilter if cfg.stream.event_id_field and on else None}
    if cfg.slices is not None:  # per-slice counts ride the same sketch (stage1/slices.py)
        from monitor.stage1.slices import SliceLayout, sliced_parts

        sl = cfg.slices
        layout = SliceLayout.build(profile, sl.keys, sl.top_k, sl.bins)
        parts.update(sliced_parts(parts["new_sketch"], parts["load_sketch"], layout))
    else:  # stored sketches of a config that had slices load too (their slices dropped)
        from monitor.stage1.slices import without_slices

        parts["load_sketch"] = without_slices(parts["load_sketch"])
    return parts


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
        max_future_skew_ms=cfg.stream.max_future_skew_ms, labels=make_label_side(cfg, profile),
        versions=version_gate(cfg))


def version_gate(cfg: MonitorConfig):
    """Stage 1's reader of ``model.version_field`` (stage1/versions.py), or None."""
    from monitor.stage1.versions import VersionGate

    m = cfg.model
    return VersionGate(m.version_field, m.max_versions) if m and m.version_field else None


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
