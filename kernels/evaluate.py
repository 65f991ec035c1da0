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
from typing import TYPE_CHECKING, Any

import numpy as np

from kernels.catalogue import CHECKS
from kernels.categorical_stats import (CategoricalReference, categorical_reference,
                                       categorical_stats)
from kernels.fairness import diff_test, ratio_test
from kernels.moment_stats import histogram_kurtosis, moment_stats
from kernels.numeric_stats import NumericReference, numeric_reference, numeric_stats
from kernels.prediction import class_rate
from kernels.result import Result

if TYPE_CHECKING:  # kernels.window's profile keeps the evaluation cache
    from kernels.window import ReferenceProfile, WindowSketch

#: the checks each family's kernel computes, in the catalogue's order
NUMERIC_CHECKS = tuple(c.name for c in CHECKS if c.family == "numeric_drift")
CATEGORICAL_CHECKS = tuple(c.name for c in CHECKS if c.family == "categorical_drift")


class _ReferenceSide:
    """What :func:`evaluate` needs from the profile and one reference sketch alone: names,
    stacked reference counts and the numeric kernel's reference-side arrays. Built once and
    kept on the profile (``profile.evaluation_cache``, never serialized); rebuilt when
    another reference sketch is passed or the reference has absorbed more events."""

    def __init__(self, profile: ReferenceProfile, ref: WindowSketch, reference_group: str | None) -> None:
        self.ref, self.n_events = ref, ref.n_events
        names = profile.numeric_names
        cr, edges = ref.numeric.counts, profile.edges
        if profile.has_score:  # the score is one more numeric row, on its own grid
            names.append("score")
            cr = np.vstack([cr, ref.score.counts])
            edges = np.vstack([edges, profile.score_edges])
        self.numeric_names = names
        self.numeric: NumericReference | None = numeric_reference(cr, edges) if names else None
        if names:  # the moment checks' reference side (kernels.moment_stats)
            self.mean, self.var, self.n_valid = _moments(ref, profile.has_score)
            stored = (profile.head.get("moments") or {})
            hist = histogram_kurtosis(cr, edges)
            self.kurtosis = np.array([
                stored[n]["kurtosis"] if n in stored and stored[n].get("kurtosis") is not None
                else hist[i] for i, n in enumerate(names)], np.float64)
        self.nr: list[int] = self.numeric.n.tolist() if self.numeric is not None else []
        cats = profile.categories
        self.categorical_names = profile.categorical_names
        self.sizes = [len(cats[name]) for name in self.categorical_names]
        cat = ref.categorical
        # per categorical: the reference categories, then "unseen"
        self.cat = [categorical_reference(np.append(cat.counts[c, :k], cat.unseen[c]))
                    for c, k in enumerate(self.sizes)]
        self.groups = profile.groups
        self.reference_group = reference_group
        # the reference saw predictions (a class field, or score + threshold)
        self.has_predictions = int(ref.groups.counts[:, 2].sum()) > 0

    def fits(self, ref: WindowSketch, reference_group: str | None) -> bool:
        return (self.ref is ref and self.n_events == ref.n_events
                and self.reference_group == reference_group)


def _reference_side(profile: ReferenceProfile, ref: WindowSketch,
                    reference_group: str | None) -> _ReferenceSide:
    side: _ReferenceSide | None = profile.evaluation_cache
    if side is None or not side.fits(ref, reference_group):
        side = _ReferenceSide(profile, ref, reference_group)
        profile.evaluation_cache = side
    return side


def evaluate(profile: ReferenceProfile, sketch: WindowSketch, min_events: int = 500,
             min_group_events: int = 10, disparate_impact_threshold: float = 0.8,
             reference: WindowSketch | None = None, reference_group: str | None = None,
             fairness: bool = True) -> list[Result]:
    """All checks of ``sketch`` against ``reference`` (default: the profile's own sketch).
    ``reference_group``: also compare every group with this one (default: the profile's
    ``metadata["reference_group"]``). ``fairness=False``: no fairness results.

    Whatever depends on the reference alone is computed on the first call for a profile and
    reference and kept on the profile (``profile.evaluation_cache``): later windows pay for
    their own side only."""
    if reference_group is None:
        reference_group = profile.metadata.get("reference_group")
    reference = reference if reference is not None else profile.reference
    assert reference is not None, "a profile without its reference sketch"
    side = _reference_side(profile, reference, reference_group)
    out: list[Result] = []
    if side.numeric is not None:
        cw = sketch.numeric.counts
        if profile.has_score:
            cw = np.vstack([cw, sketch.score.counts])
        families = ["numeric_drift"] * len(profile.numeric_names)
        families += ["prediction_drift"] * (len(side.numeric_names) - len(families))
        mean_w, var_w, n_w = _moments(sketch, profile.has_score)
        m = moment_stats(mean_w, var_w, n_w, side.mean, side.var, side.n_valid, side.kurtosis)
        m.update(mean=mean_w, sd=np.sqrt(var_w), reference_mean=side.mean,
                 reference_sd=np.sqrt(side.var), kurtosis=side.kurtosis)
        out += _numeric(side.numeric_names, families, numeric_stats(cw, side.numeric), side.nr,
                        min_events, m)
    cat_w = sketch.categorical
    for c, name in enumerate(side.categorical_names):
        cw = np.append(cat_w.counts[c, :side.sizes[c]], cat_w.unseen[c])
        out += _categorical(name, cw, side.cat[c], min_events)
    if side.has_predictions:
        out += _class_rate(sketch.groups.counts, side.ref.groups.counts, min_events)
    if side.groups and fairness:
        out += _fairness(side, sketch.groups.counts, min_group_events,
                         disparate_impact_threshold)
    return out


def _moments(sketch: WindowSketch, has_score: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact mean, variance (ddof 1) and valid count of the numeric rows (+ the score)."""
    parts = [sketch.numeric, *([sketch.score] if has_score else [])]
    return tuple(np.concatenate([getattr(p, a) for p in parts]).astype(np.float64)
                 for a in ("mean", "variance", "n"))  # type: ignore[return-value]


def _numeric(names: list[str], families: list[str], s: dict[str, np.ndarray], nr: list[int],
             min_events: int, m: dict[str, Any]) -> list[Result]:
    """The numeric results per feature, from :func:`numeric_stats` columns and the moment
    checks' ``m`` (:func:`kernels.moment_stats.moment_stats` plus the moments themselves),
    each turned into a list of Python floats once."""
    m = {k: v.tolist() for k, v in m.items()}
    nw = s["n_window"].tolist()
    d, d_up, mass = s["ks"].tolist(), s["d_upper"].tolist(), s["max_bin_mass"].tolist()
    ks_p, ad, ad_p = s["ks_p"].tolist(), s["ad"].tolist(), s["ad_p"].tolist()
    ad_dist = s["ad_distance"].tolist()
    ps, w1, js = s["psi"].tolist(), s["wasserstein"].tolist(), s["js"].tolist()
    w_sd, hel, hel_p = s["wasserstein_sd"].tolist(), s["hellinger"].tolist(), \
        s["hellinger_p"].tolist()
    dec_p = s["decile_p"].tolist()
    out: list[Result] = []
    for f, name in enumerate(names):
        n_w, n_r, fam = nw[f], nr[f], families[f]
        if n_w == 0 or n_r == 0:
            out += [Result(c, name, None, None, None, n_w, n_r, False, family=fam)
                    for c in NUMERIC_CHECKS]
            continue
        ok = n_w >= min_events
        ad_ok = math.isfinite(ad[f])
        ad_v, ad_pv, ad_e = (ad[f], ad_p[f], ad_dist[f]) if ad_ok else (None, None, None)
        hp = hel_p[f] if math.isfinite(hel_p[f]) else None
        dp = dec_p[f] if math.isfinite(dec_p[f]) else None
        out += [Result("ks", name, d[f], ks_p[f], d[f], n_w, n_r, ok, {
                    "error_bound": d_up[f] - d[f], "d_upper": d_up[f], "max_bin_mass": mass[f]},
                    family=fam),
                Result("ad", name, ad_v, ad_pv, ad_e, n_w, n_r, ok and ad_ok, family=fam),
                Result("psi", name, ps[f], dp, ps[f], n_w, n_r, ok, family=fam),
                Result("wasserstein", name, w1[f], ks_p[f], w_sd[f], n_w, n_r, ok, family=fam),
                Result("js", name, js[f], dp, js[f], n_w, n_r, ok, family=fam),
                Result("hellinger", name, hel[f], hp, hel[f], n_w, n_r, ok, family=fam),
                *_moment_results(name, f, m, n_w, n_r, ok, fam)]
    return out


def _fin(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _moment_results(name: str, f: int, m: dict[str, Any], n_w: int, n_r: int, ok: bool,
                    fam: str) -> list[Result]:
    shift, sd_e = _fin(m["mean_shift"][f]), _fin(m["sd_ratio_effect"][f])
    detail = {"mean": _fin(m["mean"][f]), "sd": _fin(m["sd"][f]),
              "reference_mean": _fin(m["reference_mean"][f]),
              "reference_sd": _fin(m["reference_sd"][f])}
    return [Result("mean_shift", name, shift, _fin(m["mean_shift_p"][f]), shift, n_w, n_r,
                   ok and shift is not None, detail, family=fam),
            Result("sd_ratio", name, _fin(m["sd_ratio"][f]), _fin(m["sd_ratio_p"][f]), sd_e,
                   n_w, n_r, ok and sd_e is not None,
                   {**detail, "kurtosis": _fin(m["kurtosis"][f])}, family=fam)]


def _categorical(name: str, cw: np.ndarray, ref: CategoricalReference,
                 min_events: int) -> list[Result]:
    nw, nr = int(cw.sum()), ref.n
    fam = "categorical_drift"
    if nw == 0 or nr == 0:
        return [*(Result(c, name, None, None, None, nw, nr, False, family=fam)
                  for c in CATEGORICAL_CHECKS),
                Result("unseen_rate", name, None, None, None, nw, nr, False, family="quality")]
    ok = nw >= min_events
    s = categorical_stats(cw, ref)
    unseen = int(cw[-1])
    return [Result("chi2", name, s.chi2, s.chi2_p, s.cohens_w, nw, nr,
                   ok and s.chi2_p is not None, family=fam),
            Result("psi", name, s.psi, s.chi2_p, s.psi, nw, nr, ok, family=fam),
            Result("js", name, s.js, s.chi2_p, s.js, nw, nr, ok, family=fam),
            Result("hellinger", name, s.hellinger, s.hellinger_p, s.hellinger, nw, nr,
                   ok and s.hellinger_p is not None, family=fam),
            Result("unseen_rate", name, unseen / nw, None, unseen / nw, nw, nr, ok,
                   {"unseen": unseen}, family="quality")]


def _class_rate(cw: np.ndarray, cr: np.ndarray, min_events: int) -> list[Result]:
    """The predicted-class rate check over every row of the group sketch (any group, or
    none): column 1 counts positive predictions, column 2 predictions."""
    k_w, n_w = int(cw[:, 1].sum()), int(cw[:, 2].sum())
    k_r, n_r = int(cr[:, 1].sum()), int(cr[:, 2].sum())
    r = class_rate(k_w, n_w, k_r, n_r)
    if r is None:
        return [Result("predicted_class_rate", "class", None, None, None, n_w, n_r, False,
                       family="prediction_drift")]
    return [Result("predicted_class_rate", "class", r.window_rate, r.p_value, r.effect, n_w,
                   n_r, n_w >= min_events, {"reference_rate": r.reference_rate,
                                            "chi2": r.chi2}, family="prediction_drift")]


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _fair(*args: Any, **kw: Any) -> Result:
    return Result(*args, **{**kw, "family": "fairness"})


def _fairness(side: _ReferenceSide, counts: np.ndarray, min_group: int, threshold: float) -> list[Result]:
    """counts: [G+1, (n, positive, predicted, tp, fp, tn, fn)]; the last row is "no group".
    A handful of groups: plain Python over the rows as lists."""
    groups = side.groups
    rows = counts[: len(groups)].tolist()
    out: list[Result] = []
    pred_n = [r[2] for r in rows]
    idx = [i for i, n in enumerate(pred_n) if n > 0]  # groups present
    rates = {i: rows[i][1] / pred_n[i] for i in idx}
    for i in idx:
        out.append(_fair("selection_rate", groups[i], rates[i], None, rates[i], pred_n[i], 0,
                          pred_n[i] >= min_group))
    if len(idx) < 2:
        return out
    lo = min(idx, key=rates.__getitem__)  # the first group of the lowest rate
    hi = max(idx, key=rates.__getitem__)  # ... and of the highest
    smallest = min(pred_n[i] for i in idx)
    enough = smallest >= min_group
    r, p, rlo, rhi = ratio_test(rows[lo][1], pred_n[lo], rows[hi][1], pred_n[hi], threshold)
    detail = {"low_group": groups[lo], "high_group": groups[hi], "ratio": r,
              "ci_low": _finite_or_none(1.0 - rhi), "ci_high": _finite_or_none(1.0 - rlo),
              "threshold": threshold, "low_rate": rates[lo], "high_rate": rates[hi],
              "low_n": pred_n[lo], "high_n": pred_n[hi]}
    out.append(_fair("disparate_impact", "*", r, p, 1.0 - r, smallest, 0, enough, detail))
    dp = rates[hi] - rates[lo]
    out.append(_fair("demographic_parity_diff", "*", dp,
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
            out.append(_fair("disparate_impact_ref", groups[i], r, p, 1.0 - r, n_min, 0,
                              n_min >= min_group,
                              {"reference_group": ref_name,
                               "ci_low": _finite_or_none(1.0 - rhi),
                               "ci_high": _finite_or_none(1.0 - rlo)}))
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
        out.append(_fair("equal_opportunity_diff", "*", tpr_diff, p_tpr, tpr_diff, small, 0,
                          ok, {"low_group": groups[a], "high_group": groups[b]}))
        out.append(_fair("equal_opportunity_ratio", "*", tpr_ratio, None, 1.0 - tpr_ratio,
                          small, 0, ok))
        eo = max(tpr_diff, fpr_diff)
        p_eo = p_tpr if tpr_diff >= fpr_diff else p_fpr
        out.append(_fair("equalized_odds_diff", "*", eo, p_eo, eo, small, 0, ok,
                          {"tpr_diff": tpr_diff, "fpr_diff": fpr_diff}))
        out.append(_fair("equalized_odds_ratio", "*", min(tpr_ratio, fpr_ratio), None,
                          1.0 - min(tpr_ratio, fpr_ratio), small, 0, ok))
    return out
