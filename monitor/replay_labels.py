"""Delayed labels over files: predictions (the stream's file) and a labels file through the
same join (:class:`~monitor.stage1.labels.PartitionLabels`) and the same stage-2 merge and
checks (:mod:`monitor.stage2.performance`) as the live path, one performance report per
window of prediction time.

The two files are read in *arrival* order — predictions by event time, labels by label time,
interleaved in slices of ``step_ms`` — so predictions wait, expire and join as they would
live. Reports carry the model's name and version, the window's revision and its label
completeness, per slice (``labels.slices``: the top-k categories of the slice key in the
reference profile, plus "other"), and the findings of the performance checks against the
reference performance (:func:`reference_sketch`, saved beside the profile by ``profile
build --labels``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from kernels.performance import PerformanceSketch
from monitor.config import MonitorConfig
from monitor.errors import StreamdriftError
from monitor.stage1.columns import id_column, id_hashes, outcome_codes
from monitor.stage1.cells import Cells
from monitor.stage1.labels import PartitionLabels
from monitor.stage2.performance import (PerformanceRules, PerformanceWindows,
                                        findings_as_checks, performance_findings,
                                        performance_report, reference_performance)


def slicing(cfg: MonitorConfig, profile) -> tuple[Cells, list[str], list[str], list[int]]:
    """Cells, slice names (``key=value``, per key its top-k reference categories by volume
    plus ``key=other``, key after key; none without keys), group names and the slice
    keys' categorical rows."""
    lab = cfg.labels
    keys = lab.slices.keys
    rows = [cfg.features.categorical.index(k) for k in keys]
    tops = [list(profile.categories[k][: lab.slices.top_k]) for k in keys]
    names = [f"{k}={v}" for k, top in zip(keys, tops) for v in [*top, "other"]]
    groups = list(profile.groups) if cfg.sensitive else []
    cells = Cells(n_slices=tuple(len(t) + 1 for t in tops) or 1, n_groups=len(groups) + 1,
                  n_bins=lab.n_bins)
    return cells, names, [*groups, "none"], rows


def _predictions(cfg, profile, table: pa.Table, rows: list[int]):
    from monitor.stage1.decode import decoder_for as make_decoder

    return prediction_columns(cfg, make_decoder(cfg, profile).decode_table(table).batch, rows)


def prediction_columns(cfg: MonitorConfig, b, rows: list[int]) -> dict[str, Any]:
    """What the join takes of a decoded prediction batch: ``slice`` [n, K] holds the codes of
    the slice keys' categorical ``rows`` (None without keys)."""
    if b.event_id_hash is None:
        raise StreamdriftError("labels: predictions need event ids: set stream.event_id_field "
                               "and keep checks.quality.enabled")
    return {"time": b.event_time_ms, "id": b.event_id_hash, "score": b.score,
            "pred": b.prediction,
            "slice": np.stack([b.categorical[r] for r in rows], axis=1) if rows else None,
            "group": b.group if cfg.sensitive else None, "offset": b.offset}


def _labels(cfg, table: pa.Table):
    lab = cfg.labels
    for where, name in (("labels.id_field", lab.id_field), ("labels.label_field",
                                                             lab.label_field),
                        ("labels.event_time_field", lab.event_time_field)):
        if name not in table.column_names:
            raise StreamdriftError(f"{where}: the labels file has no column {name!r}")
    ids = id_hashes(id_column(table.column(lab.id_field).to_pylist()))
    label, _ = outcome_codes(table.column(lab.label_field).to_pylist(), lab.positive_label)
    t = table.column(lab.event_time_field).to_numpy(zero_copy_only=False)
    return {"time": np.asarray(t, np.int64), "id": ids, "label": label}


def join_files(cfg: MonitorConfig, profile, predictions: pa.Table, labels: pa.Table,
               step_ms: int | None = None, on_step: Callable[..., None] | None = None
               ) -> tuple[PerformanceWindows, Cells, list, list]:
    """Run the join; returns stage 2's windows, the cells and the slice / group names.

    Each stream is delivered in its arrival order (predictions by event time, labels by
    label time, whatever the order of the files' rows) with its position in that order as
    the offset. ``on_step(t_ms, stage2, changed, cells, slices, groups)`` is called after
    every commit that changed a window (``changed``: their starts), ``t_ms`` the arrival
    time reached — what a live monitor would know at that moment."""
    if cfg.labels is None:
        raise StreamdriftError("labels: not configured; add a labels: section to the config")
    cells, slices, groups, rows = slicing(cfg, profile)
    P, L = _predictions(cfg, profile, predictions, rows), _labels(cfg, labels)
    part = PartitionLabels(0, cfg.windows.size_ms, cfg.windows.allowed_lateness_ms,
                           cfg.labels.max_delay_ms, cells)
    stage2 = PerformanceWindows(cells)
    step = step_ms or cfg.windows.size_ms
    p_ord = np.argsort(P["time"], kind="stable")
    l_ord = np.argsort(L["time"], kind="stable")
    pt, lt = P["time"][p_ord], L["time"][l_ord]
    times = np.concatenate([pt, lt])
    if times.size == 0:
        return stage2, cells, slices, groups
    lo_t = int(times.min()) - int(times.min()) % step
    for t0 in range(lo_t, int(times.max()) + step, step):
        a, b = np.searchsorted(pt, [t0, t0 + step])
        c, d = np.searchsorted(lt, [t0, t0 + step])
        ps, ls = p_ord[a:b], l_ord[c:d]
        if ps.size:
            part.absorb_predictions(np.arange(a, b), P["time"][ps], P["id"][ps],
                                    P["score"][ps], P["pred"][ps],
                                    None if P["slice"] is None else P["slice"][ps],
                                    None if P["group"] is None else P["group"][ps])
        if ls.size:
            part.absorb_labels(np.arange(c, d), L["time"][ls], L["id"][ls], L["label"][ls])
        changed = {r.window_start_ms for r in part.revisions() if stage2.add(r)}
        if on_step is not None and changed:
            on_step(t0 + step, stage2, changed, cells, slices, groups)
    return stage2, cells, slices, groups


def reference_sketch(cfg: MonitorConfig, profile, predictions: pa.Table, labels: pa.Table
                     ) -> PerformanceSketch:
    """All labelled reference rows in one sketch (``profile build --labels``)."""
    stage2, cells, _, _ = join_files(cfg, profile, predictions, labels)
    out = cells.new_sketch()
    for start in sorted(stage2.partials):
        out = out.merge(stage2.merged(start).sketch)
    return out


def reference_path(profile_path: str | Path) -> Path:
    p = Path(profile_path)
    return p.with_name(p.name + ".performance")


def load_reference(cfg: MonitorConfig, cells: Cells, slices: list[str]) -> dict | None:
    path = reference_path(cfg.reference.profile)
    if not path.exists():
        return None
    sk = PerformanceSketch.from_bytes(path.read_bytes())
    if sk.n_cells != cells.n_cells:
        raise StreamdriftError(f"reference.profile: {path.name} was built for other slices; "
                               "rebuild it with `streamdrift profile build --labels`")
    return reference_performance(sk, cells, slices)


def window_report(cfg: MonitorConfig, window, cells: Cells, slices: list, groups: list,
                  reference: dict | None) -> dict[str, Any]:
    """The performance report of one merged window, with its findings and checks."""
    lab = cfg.labels
    rules = PerformanceRules(min_labelled=lab.min_labelled, alpha=lab.checks.alpha,
                             max_drop=lab.checks.max_drop, floors=dict(lab.checks.floors),
                             min_slice=lab.slices.min_size)
    rep = performance_report(window, cells, slices, groups, cfg.model.identity(),
                             cfg.sensitive.min_group_events if cfg.sensitive else 0)
    findings = performance_findings(rep, reference, rules)
    rep.update(monitor=cfg.monitor, kind="performance", findings=findings,
               slice_keys=list(lab.slices.keys))
    rep["checks"] = [c.to_dict() for c in findings_as_checks(rep, findings)]
    return rep


def performance_reports(cfg: MonitorConfig, profile, predictions: pa.Table, labels: pa.Table
                        ) -> list[dict[str, Any]]:
    """One report per window of prediction time (the last revision), with its findings."""
    stage2, cells, slices, groups = join_files(cfg, profile, predictions, labels)
    reference = load_reference(cfg, cells, slices)
    return [window_report(cfg, stage2.merged(start), cells, slices, groups, reference)
            for start in sorted(stage2.partials)]
