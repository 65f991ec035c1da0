"""Stage 2's performance step with the real join, the real partial messages and the alert
policy built from a config (no broker: the step is a pure function of state and message).

- A degraded slice pages at the **first sufficient revision** of its window (enough labels in
  every scope whose predictions can give them), while the window's labels are still coming
  in, not when it is final (its end plus the labels' maximum delay); revisions before that
  page nothing.
- Later revisions of the same window page nothing more: one page per window, slice and check.
- A partition of the prediction topic without predictions, whose stage 1 sends its watermark
  alone, does not hold the judgement back; one that sends nothing does (the step cannot know
  its partials are not on their way).
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from monitor.config import from_dict
from monitor.dev.labelled import labelled_stream
from monitor.stage1.cells import Cells
from monitor.stage1.labels import PartitionLabels
from monitor.stage1.partials import PartialMessage
from monitor.stage2.evaluate import policy_from_config
from monitor.stage2.performance import PerformanceRules, reference_performance
from monitor.stage2.performance_step import PerformanceStep
from monitor.stage2.step import Stage2State, StepResult
from tests.test_replay_labels import config as replay_config

WINDOW, MAX_DELAY, MIN = 10_000, 20_000, 150
SLICES = ["channel=web", "channel=app", "channel=other"]
CELLS = Cells(n_slices=3, n_groups=1)


def reference() -> dict:
    p, _ = labelled_stream(n=20_000, seed=1, n_slices=3)
    sk = CELLS.update(CELLS.new_sketch(), CELLS.of(p["slice"], None, p["id"].size),
                      p["label"], p["pred"], p["score"])
    return reference_performance(sk, CELLS, SLICES)


def run(tmp_path, partitions: int, quiet: set[int], send_watermark: bool):
    """Predictions and labels through the join second by second (prediction time = label
    time = the clock); every second each partition's changed windows go to the step as
    stage 1 sends them. ``quiet`` partitions get no predictions; with ``send_watermark`` they
    send the prediction watermark alone (stage 1's idle heartbeat). Returns, per step, the
    alerts and the latest report of each window."""
    p, lab = labelled_stream(n=6000, seed=7, events_per_s=200, max_delay_ms=MAX_DELAY,
                             n_slices=3, partitions=partitions - len(quiet),
                             degraded_slice=1, degrade_at_ms=0)
    cfg = from_dict({**replay_config(tmp_path), "alerts": {"confirm_windows": 1,
                                                            "resolve_windows": 1}},
                    base_dir=tmp_path, env={})
    step = PerformanceStep(monitor="m", cells=CELLS, slices=SLICES, groups=["none"],
                           model={"name": "churn", "version": "v7"},
                           rules=PerformanceRules(min_labelled=MIN, min_slice=MIN),
                           reference=reference(), slice_keys=["channel"])
    policy = policy_from_config(cfg)
    state, offset = Stage2State.empty(), 0
    joins = {q: PartitionLabels(q, WINDOW, 0, MAX_DELAY, CELLS) for q in range(partitions)}
    busy = [q for q in range(partitions) if q not in quiet]
    steps = []
    for clock in range(0, 60_000 + MAX_DELAY, 1000):
        msgs = []
        for k, q in enumerate(busy):
            m = (p["partition"] == k) & (p["time"] >= clock) & (p["time"] < clock + 1000)
            idx = np.flatnonzero(m)
            joins[q].absorb_predictions(idx, p["time"][m], p["id"][m], p["score"][m],
                                        p["pred"][m], p["slice"][m])
            m = (lab["partition"] == k) & (lab["time"] >= clock) & (lab["time"] < clock + 1000)
            joins[q].absorb_labels(np.flatnonzero(m), lab["time"][m], lab["id"][m],
                                   lab["label"][m])
        wm = min(clock + 1000, int(p["time"].max())) if clock < 60_000 else clock
        for q, j in joins.items():
            revs = j.revisions(wm)
            marks = [r.window_start_ms for r in revs[1:]] + [wm]
            msgs += [PartialMessage("performance", "m", q, partitions, mark, 0,
                                    r.window_start_ms, r.window_end_ms,
                                    sketch=r.to_bytes()) for r, mark in zip(revs, marks)]
            if not revs and (q not in quiet or send_watermark):
                msgs.append(PartialMessage("performance", "m", q, partitions, wm, 0))
        for m in msgs:
            offset += 1
            r = StepResult(offset, orjson.loads(orjson.dumps(state.doc)))  # as Stage2Step
            step(state, r, m, policy, tuple)
            state.apply(r)
            steps.append((clock, [a for a in r.alerts], [x.record for x in r.reports]))
    return steps


def test_a_degraded_slice_pages_at_its_first_sufficient_revision_and_only_once(tmp_path):
    steps = run(tmp_path, partitions=2, quiet=set(), send_watermark=True)
    latest: dict[int, dict] = {}
    paged_at: dict[int, dict] = {}  # window -> its latest report when the policy paged
    pages = []
    for _, alerts, reports in steps:
        for rep in reports:
            latest[rep["window_start_ms"]] = rep
        for a in alerts:
            for i in a.items:
                pages.append((a.kind, i.check, i.feature))
            if a.kind == "firing":
                paged_at[a.window_start_ms] = latest[a.window_start_ms]
    assert paged_at, "no page"
    first = min(paged_at)
    rep = paged_at[first]
    app = rep["slices"]["channel=app"]
    # paged before the window was final, with labels still missing, enough of them in
    assert first == 0 and not rep["final"]
    assert rep["overall"]["label_completeness"] < 0.9
    assert app["labelled"] >= MIN
    assert {f["check"] for f in rep["findings"] if f["alert"]
            and f["slice"] == "channel=app"} >= {"accuracy_drop"}
    # revisions of window 0 before that one paged nothing (and were insufficient somewhere)
    earlier = [r for _, _, reps in steps for r in reps
               if r["window_start_ms"] == 0 and r["revision"] < rep["revision"]]
    assert earlier and all(r["overall"]["labelled"] < MIN or any(
        s["labelled"] < MIN <= s["predictions"] for s in r["slices"].values())
        for r in earlier)
    # one page per slice and check over every revision of every window; steady slices quiet
    firing = [(c, f) for k, c, f in pages if k == "firing"]
    assert len(firing) == len(set(firing))
    assert ("accuracy_drop", "channel=app") in firing
    assert not {f for _, f in firing} & {"channel=web", "channel=other"}
    assert {k for k, _, _ in pages} == {"firing"}  # no repeat, no update
    # the window's later revisions were still reported, up to the final one
    assert latest[0]["final"] and latest[0]["revision"] > rep["revision"]


@pytest.mark.parametrize("send_watermark", [True, False])
def test_an_empty_prediction_partition_holds_nothing_back_once_it_sends_its_watermark(
        tmp_path, send_watermark):
    steps = run(tmp_path, partitions=3, quiet={2}, send_watermark=send_watermark)
    pages = [(i.check, i.feature) for _, alerts, _ in steps for a in alerts for i in a.items
             if a.kind == "firing"]
    if send_watermark:
        assert ("accuracy_drop", "channel=app") in pages
    else:  # the watermark is what tells the step the partition has nothing on its way
        assert pages == []
