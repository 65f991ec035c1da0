"""Delayed labels through stage 1's join and stage 2's merge, without a broker: two
partitions, labels delayed at random up to the maximum, random batch cuts, a crash that rolls
a partition back to its last committed state (its later partials lost with it, as one atomic
step); per window and slice the counts equal the exact join, the figures equal sklearn's on
the joined rows, and a degradation in one slice is found in that slice only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.dev.labelled import labelled_stream
from monitor.stage1.cells import Cells
from monitor.stage1.labels import PartitionLabels
from monitor.stage2.performance import (PerformanceRules, PerformanceWindows,
                                        performance_findings, performance_report,
                                        reference_performance)
from tests.reference_performance import PERFORMANCE_ORACLES, rows_of

WINDOW, MAX_DELAY, LATENESS = 10_000, 20_000, 1_000
CELLS = Cells(n_slices=4, n_groups=3, n_bins=1000)
SLICES = ["web", "app", "store", "other"]
GROUPS = ["a", "b", "none"]


def run(preds, labels, seed, crash_at=None):
    """Feed each partition's two streams in arrival order (predictions by event time, labels
    by label time) in random batches; commit (revisions + state, one step) every few batches;
    at ``crash_at`` roll partition 0 back to its last commit and feed again from its offsets."""
    rng = np.random.default_rng(seed)
    stage2 = PerformanceWindows(CELLS)
    for part in (0, 1):
        pm = preds["partition"] == part
        lm = labels["partition"] == part
        P = {k: v[pm] for k, v in preds.items()}
        L = {k: v[lm] for k, v in labels.items()}
        # arrival order of the two streams merged: a label arrives at its label time
        arrivals = np.concatenate([P["time"], L["time"]])
        kind = np.concatenate([np.zeros(P["time"].size, int), np.ones(L["time"].size, int)])
        offs = np.concatenate([np.arange(P["time"].size), np.arange(L["time"].size)])
        order = np.argsort(arrivals, kind="stable")
        kind, offs = kind[order], offs[order]
        cuts = np.sort(rng.choice(np.arange(1, kind.size), 60, replace=False))
        steps = np.split(np.arange(kind.size), cuts)
        w = PartitionLabels(part, WINDOW, LATENESS, MAX_DELAY, CELLS)
        committed = w.to_bytes()
        crashed = False
        i = 0
        while i < len(steps):
            step = steps[i]
            for k, f in ((0, w.absorb_predictions), (1, w.absorb_labels)):
                sel = offs[step][kind[step] == k]
                if sel.size == 0:
                    continue
                # a restart re-delivers from the committed offsets: overlap included on purpose
                lo = max(0, int(sel.min()) - 3)
                sel = np.arange(lo, int(sel.max()) + 1)
                if k == 0:
                    f(sel, P["time"][sel], P["id"][sel], P["score"][sel], P["pred"][sel],
                      P["slice"][sel], P["group"][sel])
                else:
                    f(sel, L["time"][sel], L["id"][sel], L["label"][sel])
            if i % 5 == 4 or i == len(steps) - 1:  # commit: partials and state together
                for r in w.revisions():
                    stage2.add(r)
                committed = w.to_bytes()
                w = PartitionLabels.from_bytes(committed)  # what a restart would load
            if part == 0 and crash_at is not None and i == crash_at and not crashed:
                crashed = True
                w = PartitionLabels.from_bytes(committed)  # uncommitted work is lost
                i -= 3  # ... and the source re-delivers from before it
                continue
            i += 1
    return stage2


def exact_rows(preds, start, slice_code):
    m = (preds["time"] >= start) & (preds["time"] < start + WINDOW)
    if slice_code is not None:
        m &= preds["slice"] == slice_code
    return m


@pytest.mark.parametrize("seed,crash_at", [(0, None), (1, 17), (2, 33)])
def test_counts_equal_the_exact_join_and_figures_equal_sklearn(seed, crash_at):
    preds, labels = labelled_stream(n=12_000, seed=seed, events_per_s=200,
                                    max_delay_ms=MAX_DELAY, n_slices=4, n_groups=2)
    stage2 = run(preds, labels, seed, crash_at)
    assert sorted(stage2.partials) == list(range(0, 60_000, WINDOW))
    for start in sorted(stage2.partials):
        rep = performance_report(stage2.merged(start), CELLS, SLICES, GROUPS,
                                 {"name": "m", "version": "1"})
        for name, code in [("*", None)] + [(s, i) for i, s in enumerate(SLICES)]:
            r = rep["overall"] if name == "*" else rep["slices"][name]
            m = exact_rows(preds, start, code)
            assert r["predictions"] == m.sum()
            # every label was delivered (delays <= the maximum): all predictions join
            assert r["labelled"] == m.sum() and r["expired"] == 0
            assert r["label_completeness"] == (1.0 if m.sum() else r["label_completeness"])
            if m.sum() == 0:
                continue
            y, p, s = preds["label"][m], preds["pred"][m], preds["score"][m]
            for fig, (kind, oracle) in PERFORMANCE_ORACLES.items():
                want = oracle(*rows_of(kind, y, p, s))
                if fig == "auc":
                    assert abs(r["auc"] - want) <= r["auc_error_bound"] + 1e-12
                elif not math.isnan(want):
                    assert r[fig] == pytest.approx(want, rel=1e-12), (start, name, fig)


def test_a_degraded_slice_is_found_in_its_windows_and_the_others_stay_quiet():
    preds, labels = labelled_stream(n=12_000, seed=5, events_per_s=200, max_delay_ms=MAX_DELAY,
                                    degraded_slice=1, degrade_at_ms=30_000)
    ref_p, _ = labelled_stream(n=20_000, seed=99)
    ref = CELLS.new_sketch().update(CELLS.of(ref_p["slice"], ref_p["group"], 20_000),
                                    ref_p["label"], ref_p["pred"], ref_p["score"])
    reference = reference_performance(ref, CELLS, SLICES)
    stage2 = run(preds, labels, 5, crash_at=20)
    rules = PerformanceRules(min_labelled=200, alpha=0.01, max_drop=0.05)
    for start in sorted(stage2.partials):
        rep = performance_report(stage2.merged(start), CELLS, SLICES, GROUPS, {})
        alerts = {(f["slice"], f["check"]) for f in performance_findings(rep, reference, rules)
                  if f["alert"]}
        if start >= 30_000:
            assert ("app", "accuracy_drop") in alerts, start
            assert {s for s, _ in alerts} <= {"app", "*"}, alerts
        else:
            assert alerts == set(), (start, alerts)


def test_labels_not_yet_arrived_lower_completeness_and_hold_the_checks():
    preds, labels = labelled_stream(n=4000, seed=3, events_per_s=200, max_delay_ms=MAX_DELAY)
    w = PartitionLabels(0, WINDOW, LATENESS, MAX_DELAY, CELLS)
    w.absorb_predictions(np.arange(4000), preds["time"], preds["id"], preds["score"],
                         preds["pred"], preds["slice"], preds["group"])
    early = labels["time"] < 12_000
    w.absorb_labels(np.arange(early.sum()), labels["time"][early], labels["id"][early],
                    labels["label"][early])
    stage2 = PerformanceWindows(CELLS)
    for r in w.revisions():
        stage2.add(r)
    rep = performance_report(stage2.merged(0), CELLS, SLICES, GROUPS, {})
    o = rep["overall"]
    assert o["predictions"] == 2000 and 0 < o["label_completeness"] < 1
    assert o["labelled"] == int((labels["prediction_time"][early] < 10_000).sum())
    f = performance_findings(rep, None, PerformanceRules(min_labelled=10**6,
                                                         floors={"accuracy": 0.99}))
    assert not any(x["alert"] for x in f) and not any(x["sufficient"] for x in f)


def test_expired_predictions_and_orphan_labels_are_counted():
    w = PartitionLabels(0, WINDOW, 0, 1000, CELLS)
    w.absorb_predictions([0, 1], [100, 200], np.array([5, 6], np.uint64), [0.2, 0.9], [0, 1])
    w.absorb_labels([0, 1], [150, 5000], np.array([7, 6], np.uint64), [1, 1])
    w.absorb_predictions([2], [20_000], np.array([8], np.uint64), [0.5], [1])
    (r, *_) = w.revisions()
    assert r.expired.sum() == 1 and r.result()["labelled"] == 1 and r.final
    assert r.counts["orphan_labels"] == 1 and r.counts["expired"] == 1
    w.absorb_predictions([3], [300], np.array([9], np.uint64), [0.5], [1])
    assert w.late_predictions == 1  # its window was final already: counted, not lost
