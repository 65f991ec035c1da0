"""Stage 2's side of delayed labels: the latest performance of each window of prediction time,
merged over partitions, reported per slice with its revision and label completeness, and
judged against the reference performance under one false-alarm budget.

:class:`PerformanceWindows` keeps, per (window, partition), the partial with the highest
revision (a resent or older one changes nothing: partials are snapshots) and merges a window
in partition order. :func:`performance_report` turns a merged window into a plain record;
:func:`performance_findings` runs the checks.

The checks (``PerformanceRules``): per scope — the whole window and every slice with at least
``min_labelled`` (a slice: and ``min_slice``) labelled rows — and per figure (accuracy,
recall, precision, ROC AUC) that has a reference value, a one-sided test that the figure
fell below the reference (binomial z for the rates, Hanley & McNeil's standard error for the
AUC) and the drop as the effect.
A finding alerts when its p-value is below ``alpha / m`` — m the number of tests run in the
window across all slices and figures (Bonferroni: one budget for the window) — **and** the
drop exceeds ``max_drop``; or, without the test, when a figure is below its absolute
``floors`` entry with enough labels. Windows with fewer labels than ``min_labelled`` say
"insufficient" instead of guessing. Every finding names its slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kernels.performance import PerformanceSketch, label_fairness
from monitor.stage1.cells import Cells
from monitor.stage1.labels import PerformancePartial

FIGURES = ("accuracy", "recall", "precision", "auc")


@dataclass(frozen=True)
class PerformanceRules:
    min_labelled: int = 200
    alpha: float = 0.01
    max_drop: float = 0.05
    floors: dict[str, float] = field(default_factory=dict)  # figure -> absolute minimum
    min_slice: int = 0  # a slice (not the whole window) also needs this many labels


@dataclass
class MergedWindow:
    start_ms: int
    end_ms: int
    sketch: PerformanceSketch
    predictions: Any
    expired: Any
    revision: int  # sum of the partitions' revisions: grows with every new partial
    final: bool
    partitions: list[int]


class PerformanceWindows:
    """Latest partial per (window, partition); see the module docstring."""

    def __init__(self, cells: Cells) -> None:
        self.cells = cells
        self.partials: dict[int, dict[int, PerformancePartial]] = {}

    def add(self, p: PerformancePartial) -> bool:
        """Keep ``p`` if it is newer than what the window holds for its partition; returns
        whether anything changed."""
        held = self.partials.setdefault(p.window_start_ms, {})
        old = held.get(p.partition)
        if old is not None and old.revision >= p.revision:
            return False
        held[p.partition] = p
        return True

    def merged(self, start_ms: int) -> MergedWindow:
        held = self.partials[start_ms]
        parts = [held[k] for k in sorted(held)]
        sketch = self.cells.new_sketch()
        for p in parts:
            sketch = sketch.merge(p.sketch)
        return MergedWindow(start_ms, parts[0].window_end_ms, sketch,
                            sum(p.predictions for p in parts), sum(p.expired for p in parts),
                            sum(p.revision for p in parts), all(p.final for p in parts),
                            sorted(held))


def _slices(cells: Cells, slice_names: list[str]) -> list[tuple[str, list[int]]]:
    """(name, cells) of every slice of every key, key by key; ``slice_names`` lists them in
    that order (``sum(cells.per_key)`` names), or is empty: no slice keys, no slices (the
    whole window is not tested twice)."""
    if not slice_names and cells.per_key == (1,):
        return []
    where = [(k, s) for k, n in enumerate(cells.per_key) for s in range(n)]
    if len(slice_names) != len(where):
        raise ValueError(f"{len(slice_names)} slice names for {len(where)} slices")
    return [(name, cells.slice_cells(k, s)) for name, (k, s) in zip(slice_names, where)]


def performance_report(w: MergedWindow, cells: Cells, slice_names: list[str],
                       group_names: list[str], model: dict[str, str],
                       min_group: int = 0) -> dict[str, Any]:
    """A plain record of window ``w``: overall and per-slice figures (``slice_names``: per
    key its top-k plus "other", key after key — replay names them ``key=value``), label
    completeness, fairness across groups (the whole window and, under ``fairness`` of each
    slice, within it)."""
    def scope(cs):
        r = w.sketch.result(cs)
        n_pred = int(sum(int(w.predictions[c]) for c in cs))
        r["predictions"] = n_pred
        r["expired"] = int(sum(int(w.expired[c]) for c in cs))
        r["label_completeness"] = r["labelled"] / n_pred if n_pred else math.nan
        return r

    def fairness(cs):
        if cells.n_groups < 2:
            return {}
        return label_fairness(w.sketch, {name: [c for c in cs if c % cells.n_groups == g]
                                         for g, name in enumerate(group_names)}, min_group)

    slices = {}
    for name, cs in _slices(cells, slice_names):
        slices[name] = scope(cs)
        if cells.n_groups > 1:
            slices[name]["fairness"] = fairness(cs)
    whole = cells.key_cells(0)  # every row once
    return {"model": dict(model), "window_start_ms": w.start_ms, "window_end_ms": w.end_ms,
            "revision": w.revision, "final": w.final, "partitions": w.partitions,
            "overall": scope(whole), "slices": slices, "fairness": fairness(whole)}


def _z_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _drop_p(figure: str, r: dict[str, Any], ref: float) -> tuple[float | None, int]:
    """One-sided p of "the figure is not below the reference", and the rows it rests on."""
    if figure == "auc":
        pos, neg = r["positives"], r["scored"] - r["positives"]
        if not (pos and neg) or math.isnan(r["auc"]):
            return None, 0
        a = ref
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        var = (a * (1 - a) + (pos - 1) * (q1 - a * a) + (neg - 1) * (q2 - a * a)) / (pos * neg)
        z = (a - r["auc"]) / math.sqrt(var) if var > 0 else math.inf
        return _z_sf(z), min(pos, neg)
    n = {"accuracy": r["tp"] + r["tn"] + r["fp"] + r["fn"], "recall": r["tp"] + r["fn"],
         "precision": r["tp"] + r["fp"]}[figure]
    if n == 0 or math.isnan(r[figure]):
        return None, 0
    se = math.sqrt(ref * (1 - ref) / n)
    z = (ref - r[figure]) / se if se > 0 else (math.inf if r[figure] < ref else -math.inf)
    return _z_sf(z), n


def performance_findings(report: dict[str, Any], reference: dict[str, Any] | None,
                         rules: PerformanceRules) -> list[dict[str, Any]]:
    """Findings of one window report (see the module docstring). ``reference``: a
    :func:`performance_report`-like record of the labelled reference (``overall`` and
    ``slices``), or None (then only the absolute floors judge)."""
    scopes = [("*", report["overall"])] + list(report["slices"].items())
    out: list[dict[str, Any]] = []
    for name, r in scopes:
        ref_r = None
        if reference is not None:
            ref_r = reference["overall"] if name == "*" else reference["slices"].get(name)
        enough = r["labelled"] >= max(rules.min_labelled, 0 if name == "*" else rules.min_slice)
        for fig in FIGURES:
            f = {"check": f"{fig}_drop", "slice": name, "value": r[fig],
                 "labelled": r["labelled"], "label_completeness": r["label_completeness"],
                 "sufficient": enough, "p_value": None, "reference": None, "effect": None,
                 "alert": False}
            if enough and ref_r is not None and not math.isnan(ref_r.get(fig, math.nan)):
                p, _ = _drop_p(fig, r, ref_r[fig])
                f.update(p_value=p, reference=ref_r[fig], effect=ref_r[fig] - r[fig])
            out.append(f)
            floor = rules.floors.get(fig)
            if floor is not None and enough and not math.isnan(r[fig]):
                out.append({**f, "check": f"{fig}_floor", "p_value": None, "reference": floor,
                            "effect": floor - r[fig], "alert": r[fig] < floor})
    tested = [f for f in out if f["p_value"] is not None]
    m = max(1, len(tested))
    for f in tested:
        f["budget"] = rules.alpha / m
        f["alert"] = f["p_value"] < rules.alpha / m and f["effect"] > rules.max_drop
    return out


def reference_performance(sketch: PerformanceSketch, cells: Cells,
                          slice_names: list[str]) -> dict[str, Any]:
    """The reference side of :func:`performance_findings` from a sketch of the labelled
    reference rows (``profile build`` with a labels file)."""
    n = cells.n_cells
    w = MergedWindow(0, 0, sketch, [0] * n, [0] * n, 0, True, [])
    r = performance_report(w, cells, slice_names, ["*"] * cells.n_groups, {})
    return {"overall": r["overall"], "slices": r["slices"]}


def findings_as_checks(report: dict[str, Any], findings: list[dict[str, Any]]) -> list:
    """The findings as :class:`~monitor.records.CheckResult` records of the ``performance``
    family (feature ``*`` for the whole window, the slice's name — ``<key>=<value>`` — for a
    slice), the way window reports carry checks: the status page and the HTML report draw
    them, and the reliability diagram of each scope rides in the detail."""
    from monitor.records import CheckResult

    out = []
    for f in findings:
        scope = report["overall"] if f["slice"] == "*" else report["slices"][f["slice"]]
        value = f["value"]
        out.append(CheckResult(
            check=f["check"], family="performance",
            feature=f["slice"],
            statistic=None if value is None or math.isnan(value) else float(value),
            p_value=f["p_value"], effect_size=f["effect"] if f["effect"] is not None else 0.0,
            n_window=int(f["labelled"]), n_reference=0, sufficient=bool(f["sufficient"]),
            flagged=bool(f["alert"]),
            detail={"model": report.get("model", {}), "slice": f["slice"],
                    "model_name": (report.get("model") or {}).get("name"),
                    "model_version": (report.get("model") or {}).get("version"),
                    "reference": f["reference"], "revision": report["revision"],
                    "label_completeness": scope["label_completeness"],
                    "reliability": [{"mean_predicted": b["mean_score"],
                                     "observed": b["positive_rate"], "n": b["n"]}
                                    for b in scope["reliability"] if b["n"] > 0]}))
    return out
