"""Several slice keys (``labels.slices.keys: [channel, state]``): every row counts once in
each key's slices, per slice of each key the counts and figures equal a plain numpy /
scikit-learn computation on that slice's rows, all slices of all keys share one false-alarm
budget, and a degradation confined to one value of the second key is named ``state=NY``."""

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

WINDOW, MAX_DELAY = 10_000, 20_000
CELLS = Cells(n_slices=(4, 3), n_groups=3, n_bins=1000)  # channel: 3 + other; state: 2 + other
NAMES = ["channel=web", "channel=app", "channel=store", "channel=other",
         "state=CA", "state=NY", "state=other"]
GROUPS = ["a", "b", "none"]


@pytest.mark.parametrize("per_key", [(5, 2, 3), (51, 60, 40)])  # a table / arithmetic
def test_codes_spread_to_one_cell_per_key(per_key):
    rng = np.random.default_rng(0)
    c = Cells(n_slices=per_key, n_groups=4)
    n = 5000
    s = rng.integers(-2, max(per_key) + 3, (n, 3))  # out of range -> "other" of that key
    g = rng.integers(-1, 6, n)
    cells, rows = c.spread(c.of(s, g, n))
    clip = [np.where((s[:, k] >= 0) & (s[:, k] < m - 1), s[:, k], m - 1)
            for k, m in enumerate(c.per_key)]
    gg = np.where((g >= 0) & (g < 3), g, 3)
    want = np.concatenate([c.offset(k) + clip[k] * 4 + gg for k in range(3)])
    assert (cells == want).all() and (rows == np.tile(np.arange(n), 3)).all()
    assert c.n_cells == 4 * sum(per_key) and c.n_codes == 4 * int(np.prod(per_key))
    assert (c.count(c.of(s, g, n)) == np.bincount(want, minlength=c.n_cells)).all()
    one = Cells(n_slices=4, n_groups=3)  # one key: a row's code is its cell
    code = one.of(s[:, 0], g, n)
    assert (one.spread(code)[0] == code).all()


def feed(preds, labels, seed):
    """One partition, both streams in arrival order, random batches, a restart from bytes
    at every commit."""
    rng = np.random.default_rng(seed)
    stage2 = PerformanceWindows(CELLS)
    w = PartitionLabels(0, WINDOW, 1000, MAX_DELAY, CELLS)
    n = preds["time"].size
    sl = np.stack([preds["slice"], preds["state"]], axis=1)
    kind = np.concatenate([np.zeros(n, int), np.ones(n, int)])
    offs = np.concatenate([np.arange(n), np.arange(n)])
    order = np.argsort(np.concatenate([preds["time"], labels["time"]]), kind="stable")
    kind, offs = kind[order], offs[order]
    cuts = np.sort(rng.choice(np.arange(1, kind.size), 40, replace=False))
    for step in np.split(np.arange(kind.size), cuts):
        p = offs[step][kind[step] == 0]
        lab = offs[step][kind[step] == 1]
        if p.size:
            w.absorb_predictions(p, preds["time"][p], preds["id"][p], preds["score"][p],
                                 preds["pred"][p], sl[p], preds["group"][p])
        if lab.size:
            w.absorb_labels(lab, labels["time"][lab], labels["id"][lab], labels["label"][lab])
        for r in w.revisions():
            stage2.add(r)
        w = PartitionLabels.from_bytes(w.to_bytes())
    return stage2


def stream(seed, **kw):
    preds, labels = labelled_stream(n=8000, seed=seed, events_per_s=200, max_delay_ms=MAX_DELAY,
                                    n_slices=4, n_groups=2, **kw)
    rng = np.random.default_rng(seed + 100)
    preds["state"] = rng.choice(3, preds["time"].size, p=[0.5, 0.3, 0.2])
    return preds, labels


def test_every_slice_of_every_key_equals_numpy_and_sklearn_on_its_rows():
    preds, labels = stream(0)
    stage2 = feed(preds, labels, 0)
    assert sorted(stage2.partials) == list(range(0, 40_000, WINDOW))
    cols = {"channel": preds["slice"], "state": preds["state"]}
    for start in sorted(stage2.partials):
        rep = performance_report(stage2.merged(start), CELLS, NAMES, GROUPS, {})
        assert list(rep["slices"]) == NAMES
        inw = (preds["time"] >= start) & (preds["time"] < start + WINDOW)
        per_key_total = {}
        for name, got in [("*", rep["overall"]), *rep["slices"].items()]:
            m = inw.copy()
            if name != "*":
                key, v = name.split("=")
                k = 0 if key == "channel" else 1
                vals = NAMES[:4] if k == 0 else NAMES[4:]
                code = vals.index(name)
                m &= (cols[key] >= code) if v == "other" else (cols[key] == code)
                per_key_total[key] = per_key_total.get(key, 0) + got["predictions"]
            y, p, s = preds["label"][m], preds["pred"][m], preds["score"][m]
            assert got["predictions"] == m.sum() == got["labelled"]
            assert got["positives"] == int(y.sum()) and got["expired"] == 0
            tn, fp, fn, tp = (int(((y == a) & (p == b)).sum()) for a, b in
                              ((0, 0), (0, 1), (1, 0), (1, 1)))
            assert (got["tn"], got["fp"], got["fn"], got["tp"]) == (tn, fp, fn, tp), name
            for fig, (kind, oracle) in PERFORMANCE_ORACLES.items():
                want = oracle(*rows_of(kind, y, p, s))
                if fig == "auc":
                    assert abs(got["auc"] - want) <= got["auc_error_bound"] + 1e-12
                elif not math.isnan(want):
                    assert got[fig] == pytest.approx(want, rel=1e-12), (start, name, fig)
        # each key's slices partition the window: every row once per key
        assert per_key_total == {"channel": inw.sum(), "state": inw.sum()}


def test_one_budget_across_all_slices_and_a_second_key_slice_is_named():
    preds, labels = stream(3)
    # degrade state=NY (code 1) from 20 s on: the label stops following the score there
    ny = (preds["state"] == 1) & (preds["time"] >= 20_000)
    rng = np.random.default_rng(7)
    preds["label"][ny] = (rng.random(int(ny.sum())) < 1 - preds["score"][ny]).astype(np.int8)
    by_id = dict(zip(preds["id"].tolist(), preds["label"].tolist()))
    labels["label"] = np.array([by_id[i] for i in labels["id"].tolist()], np.int8)
    ref_p, _ = stream(99)
    n = ref_p["time"].size
    ref = CELLS.update(CELLS.new_sketch(),
                       CELLS.of(np.stack([ref_p["slice"], ref_p["state"]], 1), ref_p["group"], n),
                       ref_p["label"], ref_p["pred"], ref_p["score"])
    reference = reference_performance(ref, CELLS, NAMES)
    assert reference["overall"]["labelled"] == n
    stage2 = feed(preds, labels, 3)
    rules = PerformanceRules(min_labelled=150, alpha=0.01, max_drop=0.05)
    for start in sorted(stage2.partials):
        rep = performance_report(stage2.merged(start), CELLS, NAMES, GROUPS, {})
        found = performance_findings(rep, reference, rules)
        tested = [f for f in found if f["p_value"] is not None]
        assert {f["slice"] for f in tested} == {"*", *NAMES}  # every slice of both keys
        assert all(f["budget"] == pytest.approx(0.01 / len(tested)) for f in tested)
        alerts = {f["slice"] for f in found if f["alert"]}
        if start >= 20_000:
            # NY's rows are a third of every channel: those slices really dropped too; the
            # other states did not
            assert "state=NY" in alerts and not alerts & {"state=CA", "state=other"}, alerts
        else:
            assert alerts == set(), (start, alerts)


def test_without_slice_keys_the_window_is_tested_once():
    preds, labels = stream(4)
    cells = Cells()
    sk = cells.update(cells.new_sketch(), cells.of(None, None, preds["time"].size),
                      preds["label"], preds["pred"], preds["score"])
    reference = reference_performance(sk, cells, [])
    w = PerformanceWindows(cells)
    part = PartitionLabels(0, WINDOW, 1000, MAX_DELAY, cells)
    n = preds["time"].size
    part.absorb_predictions(np.arange(n), preds["time"], preds["id"], preds["score"],
                            preds["pred"])
    part.absorb_labels(np.arange(n), labels["time"], labels["id"], labels["label"])
    for r in part.revisions():
        w.add(r)
    rep = performance_report(w.merged(0), cells, [], ["none"], {})
    assert rep["slices"] == {} and rep["overall"]["labelled"] == 2000
    tested = [f for f in performance_findings(rep, reference, PerformanceRules(min_labelled=100))
              if f["p_value"] is not None]
    assert {f["slice"] for f in tested} == {"*"} and tested[0]["budget"] == 0.01 / len(tested)
