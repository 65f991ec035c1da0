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

import numpy as np

from kernels.stats import (
    Result, chi2_test, diff_test, js_distance, numeric_stats, psi, ratio_test,
)


def evaluate(profile, sketch, min_events: int = 500, min_group_events: int = 200,
             disparate_impact_threshold: float = 0.8, reference=None) -> list[Result]:
    """All checks of ``sketch`` against ``reference`` (default: the profile's own sketch)."""
    ref = reference if reference is not None else profile.reference
    out: list[Result] = []
    names = list(profile.numeric_names)
    cw, cr, edges = sketch.numeric.counts, ref.numeric.counts, profile.edges
    if profile.has_score:  # the score is one more numeric row, on its own grid
        names.append("score")
        cw = np.vstack([cw, sketch.score.counts])
        cr = np.vstack([cr, ref.score.counts])
        edges = np.vstack([edges, profile.score_edges])
    if names:
        s = numeric_stats(cw, cr, edges)
        nw, nr = cw.sum(axis=1), cr.sum(axis=1)
        for f, name in enumerate(names):
            out += _numeric(name, {k: v[f] for k, v in s.items()}, int(nw[f]), int(nr[f]),
                            min_events)
    cat_w, cat_r = sketch.categorical, ref.categorical
    for c, name in enumerate(profile.categorical_names):
        k = len(profile.categories[name])
        # the reference categories, then "unseen"
        cw = np.append(cat_w.counts[c, :k], cat_w.unseen[c])
        cr = np.append(cat_r.counts[c, :k], cat_r.unseen[c])
        out += _categorical(name, cw, cr, min_events)
    if profile.groups:
        out += _fairness(profile, sketch.groups.counts, min_group_events,
                         disparate_impact_threshold)
    return out


def _numeric(name, s, nw, nr, min_events) -> list[Result]:
    if nw == 0 or nr == 0:
        return [Result(c, name, None, None, None, nw, nr, False)
                for c in ("ks", "ad", "psi", "wasserstein", "js")]
    ok = nw >= min_events
    d, ad = float(s["ks"]), s["ad"]
    ad_ok = bool(np.isfinite(ad))
    ad_v, ad_p = (float(ad), float(s["ad_p"])) if ad_ok else (None, None)
    return [Result("ks", name, d, float(s["ks_p"]), d, nw, nr, ok, {
                "error_bound": float(s["d_upper"]) - d, "d_upper": float(s["d_upper"]),
                "max_bin_mass": float(s["max_bin_mass"])}),
            Result("ad", name, ad_v, ad_p, ad_v, nw, nr, ok and ad_ok),
            Result("psi", name, float(s["psi"]), None, float(s["psi"]), nw, nr, ok),
            Result("wasserstein", name, float(s["wasserstein"]), None, float(s["wasserstein"]),
                   nw, nr, ok),
            Result("js", name, float(s["js"]), None, float(s["js"]), nw, nr, ok)]


def _categorical(name, cw, cr, min_events) -> list[Result]:
    nw, nr = int(cw.sum()), int(cr.sum())
    if nw == 0 or nr == 0:
        return [Result(c, name, None, None, None, nw, nr, False)
                for c in ("chi2", "psi", "js", "unseen_rate")]
    ok = nw >= min_events
    stat, p, v = chi2_test(cw, cr)
    unseen = float(cw[-1] / nw)
    ps, js = psi(cw, cr), js_distance(cw, cr)
    return [Result("chi2", name, stat, p, v, nw, nr, ok and p is not None),
            Result("psi", name, ps, None, ps, nw, nr, ok),
            Result("js", name, js, None, js, nw, nr, ok),
            Result("unseen_rate", name, unseen, None, unseen, nw, nr, ok,
                   {"unseen": int(cw[-1])})]


def _fairness(profile, counts, min_group, threshold) -> list[Result]:
    """counts: [G+1, (n, positive, predicted, tp, fp, tn, fn)]; the last row is "no group"."""
    groups = profile.groups
    g = counts[: len(groups)]
    out: list[Result] = []
    pred_n = g[:, 2]
    present = pred_n > 0
    rates = np.where(present, g[:, 1] / np.maximum(pred_n, 1), np.nan)
    for i, name in enumerate(groups):
        if present[i]:
            out.append(Result("selection_rate", name, float(rates[i]), None, float(rates[i]),
                              int(pred_n[i]), 0, bool(pred_n[i] >= min_group)))
    idx = np.flatnonzero(present)
    if idx.size < 2:
        return out
    lo = idx[np.nanargmin(rates[idx])]
    hi = idx[np.nanargmax(rates[idx])]
    smallest = int(pred_n[idx].min())
    enough = smallest >= min_group
    r, p, rlo, rhi = ratio_test(int(g[lo, 1]), int(pred_n[lo]), int(g[hi, 1]), int(pred_n[hi]),
                                threshold)
    detail = {"low_group": groups[lo], "high_group": groups[hi], "ratio": r,
              "ci_low": 1.0 - rhi, "ci_high": 1.0 - rlo, "threshold": threshold}
    out.append(Result("disparate_impact", "*", r, p, 1.0 - r, smallest, 0, enough, detail))
    ref_name = profile.metadata.get("reference_group")
    out.append(Result("demographic_parity_diff", "*", float(rates[hi] - rates[lo]),
                      diff_test(int(g[lo, 1]), int(pred_n[lo]), int(g[hi, 1]), int(pred_n[hi])),
                      float(rates[hi] - rates[lo]), smallest, 0, enough,
                      {"low_group": groups[lo], "high_group": groups[hi]}))
    if ref_name in groups and present[groups.index(ref_name)]:
        j = groups.index(ref_name)
        for i in idx:
            if i == j:
                continue
            r, p, rlo, rhi = ratio_test(int(g[i, 1]), int(pred_n[i]), int(g[j, 1]),
                                        int(pred_n[j]), threshold)
            n_min = int(min(pred_n[i], pred_n[j]))
            out.append(Result("disparate_impact_ref", groups[i], r, p, 1.0 - r, n_min, 0,
                              n_min >= min_group, {"reference_group": ref_name,
                                                   "ci_low": 1.0 - rhi, "ci_high": 1.0 - rlo}))
    pos = g[:, 3] + g[:, 6]  # labelled positives: TP + FN
    neg = g[:, 4] + g[:, 5]  # labelled negatives: FP + TN
    lab = idx[(pos[idx] > 0) & (neg[idx] > 0)]
    if lab.size >= 2:
        tpr = g[lab, 3] / pos[lab]
        fpr = g[lab, 4] / neg[lab]
        small = int(min(pos[lab].min(), neg[lab].min()))
        ok = small >= min_group // 4 and int((pos[lab] + neg[lab]).min()) >= min_group
        a, b = lab[np.argmin(tpr)], lab[np.argmax(tpr)]
        tpr_diff = float(tpr.max() - tpr.min())
        p_tpr = diff_test(int(g[a, 3]), int(pos[a]), int(g[b, 3]), int(pos[b]))
        c, d = lab[np.argmin(fpr)], lab[np.argmax(fpr)]
        fpr_diff = float(fpr.max() - fpr.min())
        p_fpr = diff_test(int(g[c, 4]), int(neg[c]), int(g[d, 4]), int(neg[d]))
        tpr_ratio = float(tpr.min() / tpr.max()) if tpr.max() > 0 else 1.0
        fpr_ratio = float(fpr.min() / fpr.max()) if fpr.max() > 0 else 1.0
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
