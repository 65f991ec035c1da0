"""Every statistic of one window against the reference profile, as plain records.

>>> import numpy as np
>>> from kernels.window import ReferenceProfile, WindowSketch, reference_batch
>>> rng = np.random.default_rng(0)
>>> p = ReferenceProfile.build(numeric={"x": rng.normal(size=5000)}, n_bins=100)
>>> w = WindowSketch.empty(p).update(reference_batch(
...     p, {"x": rng.normal(0.5, 1, 2000)}, {}, None, None, None, None))
>>> r = {(x.check, x.feature): x for x in evaluate(p, w, min_events=100)}
>>> r[("ks", "x")].effect_size > 0.15, r[("ks", "x")].p_value < 1e-10, r[("ks", "x")].sufficient
(True, True, True)
"""

from __future__ import annotations

import math

import numpy as np

from kernels.stats import (
    NumericReference, Result, categorical_reference, categorical_stats, diff_test,
    numeric_reference, numeric_stats, ratio_test,
)

NUMERIC_CHECKS = ("ks", "ad", "psi", "wasserstein", "js")
CATEGORICAL_CHECKS = ("chi2", "psi", "js", "unseen_rate")


class _ReferenceSide:
    """What :func:`evaluate` needs from the profile and one reference sketch alone: names,
    stacked reference counts and the numeric kernel's reference-side arrays. Built once and
    kept on the profile (``profile.evaluation_cache``, never serialized); rebuilt when
    another reference sketch is passed or the reference has absorbed more events."""

    def __init__(self, profile, ref) -> None:
        self.ref, self.n_events = ref, ref.n_events
        names = profile.numeric_names
        cr, edges = ref.numeric.counts, profile.edges
        if profile.has_score:  # the score is one more numeric row, on its own grid
            names.append("score")
            cr = np.vstack([cr, ref.score.counts])
            edges = np.vstack([edges, profile.score_edges])
        self.numeric_names = names
        self.numeric: NumericReference | None = numeric_reference(cr, edges) if names else None
        self.nr = self.numeric.n.tolist() if names else []
        cats = profile.categories
        self.categorical_names = profile.categorical_names
        self.sizes = [len(cats[name]) for name in self.categorical_names]
        cat = ref.categorical
        # per categorical: the reference categories, then "unseen"
        self.cat = [categorical_reference(np.append(cat.counts[c, :k], cat.unseen[c]))
                    for c, k in enumerate(self.sizes)]
        self.groups = profile.groups
        self.reference_group = profile.metadata.get("reference_group")

    def fits(self, ref) -> bool:
        return self.ref is ref and self.n_events == ref.n_events


def _reference_side(profile, ref) -> _ReferenceSide:
    side = profile.evaluation_cache
    if side is None or not side.fits(ref):
        side = _ReferenceSide(profile, ref)
        profile.evaluation_cache = side
    return side


def evaluate(profile, sketch, min_events: int = 500, min_group_events: int = 200,
             disparate_impact_threshold: float = 0.8, reference=None) -> list[Result]:
    """All checks of ``sketch`` against ``reference`` (default: the profile's own sketch).

    Whatever depends on the reference alone is computed on the first call for a profile and
    reference and kept on the profile (``profile.evaluation_cache``): later windows pay for
    their own side only."""
    side = _reference_side(profile, reference if reference is not None else profile.reference)
    out: list[Result] = []
    if side.numeric_names:
        cw = sketch.numeric.counts
        if profile.has_score:
            cw = np.vstack([cw, sketch.score.counts])
        out += _numeric(side.numeric_names, numeric_stats(cw, side.numeric), side.nr,
                        min_events)
    cat_w = sketch.categorical
    for c, name in enumerate(side.categorical_names):
        cw = np.append(cat_w.counts[c, :side.sizes[c]], cat_w.unseen[c])
        out += _categorical(name, cw, side.cat[c], min_events)
    if side.groups:
        out += _fairness(side, sketch.groups.counts, min_group_events,
                         disparate_impact_threshold)
    return out


def _numeric(names, s, nr, min_events) -> list[Result]:
    """The five numeric results per feature, from :func:`numeric_stats` columns (each turned
    into a list of Python floats once)."""
    nw = s["n_window"].tolist()
    d, d_up, mass = s["ks"].tolist(), s["d_upper"].tolist(), s["max_bin_mass"].tolist()
    ks_p, ad, ad_p = s["ks_p"].tolist(), s["ad"].tolist(), s["ad_p"].tolist()
    ps, w1, js = s["psi"].tolist(), s["wasserstein"].tolist(), s["js"].tolist()
    out: list[Result] = []
    for f, name in enumerate(names):
        n_w, n_r = nw[f], nr[f]
        if n_w == 0 or n_r == 0:
            out += [Result(c, name, None, None, None, n_w, n_r, False) for c in NUMERIC_CHECKS]
            continue
        ok = n_w >= min_events
        ad_ok = math.isfinite(ad[f])
        ad_v, ad_pv = (ad[f], ad_p[f]) if ad_ok else (None, None)
        out += [Result("ks", name, d[f], ks_p[f], d[f], n_w, n_r, ok, {
                    "error_bound": d_up[f] - d[f], "d_upper": d_up[f], "max_bin_mass": mass[f]}),
                Result("ad", name, ad_v, ad_pv, ad_v, n_w, n_r, ok and ad_ok),
                Result("psi", name, ps[f], None, ps[f], n_w, n_r, ok),
                Result("wasserstein", name, w1[f], None, w1[f], n_w, n_r, ok),
                Result("js", name, js[f], None, js[f], n_w, n_r, ok)]
    return out


def _categorical(name, cw, ref, min_events) -> list[Result]:
    nw, nr = int(cw.sum()), ref.n
    if nw == 0 or nr == 0:
        return [Result(c, name, None, None, None, nw, nr, False) for c in CATEGORICAL_CHECKS]
    ok = nw >= min_events
    stat, p, v, ps, js = categorical_stats(cw, ref)
    unseen = int(cw[-1])
    return [Result("chi2", name, stat, p, v, nw, nr, ok and p is not None),
            Result("psi", name, ps, None, ps, nw, nr, ok),
            Result("js", name, js, None, js, nw, nr, ok),
            Result("unseen_rate", name, unseen / nw, None, unseen / nw, nw, nr, ok,
                   {"unseen": unseen})]


def _fairness(side, counts, min_group, threshold) -> list[Result]:
    """counts: [G+1, (n, positive, predicted, tp, fp, tn, fn)]; the last row is "no group".
    A handful of groups: plain Python over the rows as lists."""
    groups = side.groups
    rows = counts[: len(groups)].tolist()
    out: list[Result] = []
    pred_n = [r[2] for r in rows]
    idx = [i for i, n in enumerate(pred_n) if n > 0]  # groups present
    rates = {i: rows[i][1] / pred_n[i] for i in idx}
    for i in idx:
        out.append(Result("selection_rate", groups[i], rates[i], None, rates[i], pred_n[i], 0,
                          pred_n[i] >= min_group))
    if len(idx) < 2:
        return out
    lo = min(idx, key=rates.__getitem__)  # the first group of the lowest rate
    hi = max(idx, key=rates.__getitem__)  # ... and of the highest
    smallest = min(pred_n[i] for i in idx)
    enough = smallest >= min_group
    r, p, rlo, rhi = ratio_test(rows[lo][1], pred_n[lo], rows[hi][1], pred_n[hi], threshold)
    detail = {"low_group": groups[lo], "high_group": groups[hi], "ratio": r,
              "ci_low": 1.0 - rhi, "ci_high": 1.0 - rlo, "threshold": threshold}
    out.append(Result("disparate_impact", "*", r, p, 1.0 - r, smallest, 0, enough, detail))
    dp = rates[hi] - rates[lo]
    out.append(Result("demographic_parity_diff", "*", dp,
                      diff_test(rows[lo][1], pred_n[lo], rows[hi][1], pred_n[hi]), dp,
                      smallest, 0, enough, {"low_group": groups[lo], "high_group": groups[hi]}))
    ref_name = side.reference_group
    if ref_name in groups and groups.index(ref_name) in rates:
        j = groups.index(ref_name)
        for i in idx:
            if i == j:
                continue
            r, p, rlo, rhi = ratio_test(rows[i][1], pred_n[i], rows[j][1], pred_n[j], threshold)
            n_min = min(pred_n[i], pred_n[j])
            out.append(Result("disparate_impact_ref", groups[i], r, p, 1.0 - r, n_min, 0,
                              n_min >= min_group, {"reference_group": ref_name,
                                                   "ci_low": 1.0 - rhi, "ci_high": 1.0 - rlo}))
    pos = {i: rows[i][3] + rows[i][6] for i in idx}  # labelled positives: TP + FN
    neg = {i: rows[i][4] + rows[i][5] for i in idx}  # labelled negatives: FP + TN
    lab = [i for i in idx if pos[i] > 0 and neg[i] > 0]
    if len(lab) >= 2:
        tpr = {i: rows[i][3] / pos[i] for i in lab}
        fpr = {i: rows[i][4] / neg[i] for i in lab}
        small = min(min(pos[i] for i in lab), min(neg[i] for i in lab))
        ok = small >= min_group // 4 and min(pos[i] + neg[i] for i in lab) >= min_group
        a, b = min(lab, key=tpr.__getitem__), max(lab, key=tpr.__getitem__)
        tpr_diff = tpr[b] - tpr[a]
        p_tpr = diff_test(rows[a][3], pos[a], rows[b][3], pos[b])
        c, d = min(lab, key=fpr.__getitem__), max(lab, key=fpr.__getitem__)
        fpr_diff = fpr[d] - fpr[c]
        p_fpr = diff_test(rows[c][4], neg[c], rows[d][4], neg[d])
        tpr_ratio = tpr[a] / tpr[b] if tpr[b] > 0 else 1.0
        fpr_ratio = fpr[c] / fpr[d] if fpr[d] > 0 else 1.0
        out.append(Result("equal_opportunity_diff", "*", tpr_diff, p_tpr, tpr_diff, small, 0,
                          ok, {"low_group": groups[a], "high_group": groups[b]}))
        out.append(Result("equal_opportunity_ratio", "*", tpr_ratio, None, 1.0 - tpr_ratio,
                          small, 0, ok))
        eo = max(tpr_diff, fpr_diff)
        p_eo = p_tpr if tpr_diff >= fpr_diff else p_fpr
        out.append(Result("equalized_odds_diff", "*", eo, p_eo, eo, small, 0, ok,
                          {"tpr_diff": tpr_diff, "fpr_diff": fpr_diff}))
        out.append(Result("equalized_odds_ratio", "*", min(tpr_ratio, fpr_ratio), None,
                          1.0 - min(tpr_ratio, fpr_ratio), small, 0, ok))
    return out
