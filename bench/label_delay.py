"""How long after a degradation starts it is alerted, when labels come late.

A degradation starts at a window boundary in one slice (``monitor.dev.labelled``); labels
arrive uniformly within ``max_delay``. Predictions and labels are fed in arrival order
through stage 1's join (:class:`~monitor.stage1.labels.PartitionLabels`) and stage 2's
merge and checks, committing every ``step_ms`` of arrival time; the first commit at which
the degraded slice's accuracy-drop finding alerts for the first degraded window gives the
delay, in windows from the onset (the start of that window). Baseline: waiting for complete
labels, i.e. one window + the max delay after the onset.

Used by ``bench/bench_labels.py`` (figure ``labels.delay_windows_degradation``).
"""

from __future__ import annotations

import numpy as np

from monitor.dev.labelled import labelled_stream
from monitor.stage1.labels import Cells, PartitionLabels
from monitor.stage2.performance import (PerformanceRules, PerformanceWindows,
                                        performance_findings, performance_report,
                                        reference_performance)

WINDOW = 60_000
SLICES = ["web", "app", "store", "other"]
CELLS = Cells(n_slices=4, n_groups=1)


def detection_delay(max_delay_ms: int, seed: int, events_per_s: float = 20.0,
                    step_ms: int = 5_000) -> float:
    """Windows from the onset of the degradation to its first alert (inf: never)."""
    degrade = 5 * WINDOW
    n = int(events_per_s * (degrade + WINDOW + max_delay_ms + 2 * WINDOW) / 1000)
    p, l = labelled_stream(n=n, seed=seed, events_per_s=events_per_s,
                           max_delay_ms=max_delay_ms, degraded_slice=1, degrade_at_ms=degrade)
    ref_p, _ = labelled_stream(n=20_000, seed=seed + 1000)
    ref = CELLS.new_sketch().update(CELLS.of(ref_p["slice"], None, 20_000), ref_p["label"],
                                    ref_p["pred"], ref_p["score"])
    reference = reference_performance(ref, CELLS, SLICES)
    rules = PerformanceRules(min_labelled=100, alpha=0.01, max_drop=0.05)
    part = PartitionLabels(0, WINDOW, 1000, max_delay_ms, CELLS)
    stage2 = PerformanceWindows(CELLS)
    end = int(max(p["time"].max(), l["time"].max()))
    for t0 in range(0, end + step_ms, step_ms):
        ps = np.flatnonzero((p["time"] >= t0) & (p["time"] < t0 + step_ms))
        ls = np.flatnonzero((l["time"] >= t0) & (l["time"] < t0 + step_ms))
        if ps.size:
            part.absorb_predictions(ps, p["time"][ps], p["id"][ps], p["score"][ps],
                                    p["pred"][ps], p["slice"][ps])
        if ls.size:
            part.absorb_labels(ls, l["time"][ls], l["id"][ls], l["label"][ls])
        changed = [stage2.add(r) for r in part.revisions()]
        if degrade in stage2.partials and any(changed):
            rep = performance_report(stage2.merged(degrade), CELLS, SLICES, ["*"], {})
            if any(f["alert"] and f["slice"] == "app" and f["check"] == "accuracy_drop"
                   for f in performance_findings(rep, reference, rules)):
                return (t0 + step_ms - degrade) / WINDOW
    return float("inf")


def delays(max_delay_windows: list[float], seeds: int) -> dict[float, list[float]]:
    return {m: [detection_delay(int(m * WINDOW), s) for s in range(seeds)]
            for m in max_delay_windows}
