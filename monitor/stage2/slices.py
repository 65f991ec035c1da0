"""Feature drift and data quality per slice of a closed window (config ``slices:``).

The window's :class:`~monitor.stage1.slices.SliceSketch` (merged over partitions like every
sketch) against the reference, slice by slice. Every check is a
:class:`~monitor.records.CheckResult` of the usual families, its ``feature`` is
``<feature>@<key>=<value>`` (``amount@channel=web``) and its ``detail`` names the ``slice``
and the ``feature``, so the one alert policy judges it — same floors as the feature's global
check, the same false-alarm budget as every other test of the window (the p-values of all
slices and all checks are corrected together) — and an alert names its slice.

Per slice and field:

- ``psi`` (numeric_drift; prediction_drift for the score, feature ``score``): PSI of a numeric
  feature on ``slices.bins`` reference-quantile bins (natural log, shares floored at 1e-4);
  test: Pearson chi-square of the 2 x bins table;
- ``chi2`` (categorical_drift): a categorical feature's ``bins - 1`` top reference categories
  + other; effect Cohen's w, the same chi-square;
- ``null_rate`` (quality): null / events, effect the excess over the reference's missing rate
  (null + missing + NaN / inf); ``type_error_rate``: wrong type / events;
  ``nonfinite_rate`` (numeric) and ``unseen_rate`` (categorical): excess over the
  reference's; each with the one-sided binomial test against the reference's rate.

A slice key's own feature is not checked inside its own slices (it is constant there).

**Reference.** Per slice when the profile has one (``<profile>.slices``, written by
``streamdrift profile build`` when the config has ``slices:``), for every slice whose
reference holds at least ``slices.min_size`` events; otherwise the global reference (the
profile's own counts regrouped onto the same bins), which assumes the slices look alike in
the training data. Each check's ``detail["reference"]`` says which (``slice`` / ``global``).

**Bounds.** Slices with fewer than ``slices.min_size`` events in the window are not judged
(no check); the slice list is fixed (per key the top-k reference categories + other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson
from scipy.special import bdtrc

from kernels.categorical_stats import categorical_reference, categorical_stats
from monitor.errors import StreamdriftError
from monitor.records import CheckResult
from monitor.stage1.slices import SliceLayout, SliceSketch
from monitor.stage1.windows import frame, unframe


def reference_path(profile_path: str | Path) -> Path:
    p = Path(profile_path)
    return p.with_name(p.name + ".slices")


def write_reference(path: str | Path, profile, sketch: SliceSketch) -> None:
    """The reference's per-slice counts beside the profile (tied to its id and slices)."""
    lay = sketch.layout
    head = orjson.dumps({"profile_id": profile.profile_id, "names": lay.names,
                         "bins": lay.bins})
    reference_path(path).write_bytes(frame(head, [sketch.to_bytes()]))


def read_reference(path: str | Path, profile, layout: SliceLayout) -> SliceSketch | None:
    """The per-slice reference beside the profile at ``path``, or None when there is none.
    One line (rebuild the profile) when it belongs to another profile or other slices."""
    p = reference_path(path)
    if not p.exists():
        return None
    head, blobs = unframe(p.read_bytes())
    h = orjson.loads(head)
    if h.get("profile_id") != profile.profile_id or h.get("names") != layout.names \
            or h.get("bins") != layout.bins:
        raise StreamdriftError(f"reference.profile: {p.name} was built for another profile or "
                               "other slices; rebuild it with `streamdrift profile build`")
    return SliceSketch.from_bytes(blobs[0], layout)


def global_reference(profile, layout: SliceLayout) -> SliceSketch:
    """The profile's whole-reference counts on the slice bins, as one slice repeated."""
    ref = profile.reference
    S, B = layout.n_slices, layout.bins
    out = SliceSketch.empty(layout)
    if ref is None:
        return out
    fine = ref.numeric.counts
    if profile.has_score:
        fine = np.vstack([fine, ref.score.counts])
    num = layout.regroup_fine(fine) if layout.numeric else out.numeric[0]
    cat = np.zeros((len(layout.categorical), B), np.int64)
    cc = ref.categorical
    sizes = [len(profile.categories[n]) for n in layout.categorical]
    for c, k in enumerate(sizes):
        cat[c, :min(k, B - 1)] = cc.counts[c, :min(k, B - 1)]
        cat[c, B - 1] += int(cc.counts[c, B - 1:k].sum()) + int(cc.unseen[c])
    qc = ref.quality_counts()  # the score's row: not judged per slice, zeros
    q = np.array([[f.get("missing", 0), f.get("null", 0), f.get("type_error", 0),
                   f.get("nan", 0) + f.get("inf", 0) + f.get("unseen", 0)]
                  for f in (qc.get(n, {}) for n in (*layout.numeric, *layout.categorical))],
                 np.int64).reshape(-1, 4)
    return SliceSketch(layout, np.full(S, ref.n_events, np.int64), np.tile(num, (S, 1, 1)),
                       np.tile(cat, (S, 1, 1)), np.tile(q, (S, 1, 1)))


class SliceChecks:
    """``checks(sliced sketch) -> (report section, CheckResults)``; ``enabled(family,
    check, feature)`` says which checks run (the evaluator's switches)."""

    def __init__(self, cfg, profile, layout: SliceLayout,
                 enabled: Callable[[str, str, str], bool]) -> None:
        self.layout = layout
        self.min_size = cfg.slices.min_size
        self.enabled = enabled
        self.quality_on = cfg.checks.quality.enabled
        self.has_score = bool(profile.has_score)  # then lay.numeric ends with "score"
        own = read_reference(cfg.reference.profile, profile, layout)
        glob = global_reference(profile, layout)
        self.use_own = (own.events >= self.min_size) if own is not None \
            else np.zeros(layout.n_slices, bool)
        self.ref = own if own is not None else glob
        self.glob = glob

    def _ref(self, s: int) -> tuple[SliceSketch, str]:
        return (self.ref, "slice") if self.use_own[s] else (self.glob, "global")

    def checks(self, sketch: SliceSketch) -> tuple[dict[str, Any], list[CheckResult]]:
        lay, out = self.layout, []
        section: dict[str, Any] = {}
        for s, name in enumerate(lay.names):
            n = int(sketch.events[s])
            ref, which = self._ref(s)
            judged = n >= self.min_size
            section[name] = {"events": n, "judged": judged, "reference": which}
            if judged:
                out += self._slice(sketch, s, name, ref, which)
        return section, out

    def _slice(self, sk: SliceSketch, s: int, name: str, ref: SliceSketch, which: str
               ) -> list[CheckResult]:
        lay = self.layout
        own_key = lay.keys[lay.key_of(s)]
        F = len(lay.numeric)
        n, rn = int(sk.events[s]), int(ref.events[s])
        out: list[CheckResult] = []

        def result(check, family, field, stat, p, effect, nw, nr, ok, **detail):
            return CheckResult(check=check, family=family, feature=f"{field}@{name}",
                               statistic=float(stat), p_value=p, effect_size=float(effect),
                               n_window=int(nw), n_reference=int(nr), sufficient=ok,
                               detail={"slice": name, "feature": field, "reference": which,
                                       **detail})

        for f, field in enumerate(lay.numeric):
            cw, cr = sk.numeric[s, f], ref.numeric[s, f]
            fam = "prediction_drift" if field == "score" and self.has_score else "numeric_drift"
            if self.enabled(fam, "psi", field) and cw.sum() and cr.sum():
                st = categorical_stats(cw, categorical_reference(cr))
                out.append(result("psi", fam, field, st.psi, st.chi2_p, st.psi,
                                  cw.sum(), cr.sum(), st.chi2_p is not None))
        for c, field in enumerate(lay.categorical):
            cw, cr = sk.categorical[s, c], ref.categorical[s, c]
            if field != own_key and self.enabled("categorical_drift", "chi2", field) \
                    and cw.sum() and cr.sum():
                st = categorical_stats(cw, categorical_reference(cr))
                out.append(result("chi2", "categorical_drift", field, st.chi2, st.chi2_p,
                                  st.cohens_w, cw.sum(), cr.sum(), st.chi2_p is not None))
        if not self.quality_on:
            return out

        def rrate(k: int) -> float:
            return float(k) / rn if rn else 0.0

        for i, field in enumerate((*lay.numeric, *lay.categorical)):
            if field == own_key or (i == F - 1 and self.has_score) \
                    or not self.enabled("quality", "null_rate", field):
                continue
            q, rq = sk.quality[s, i], ref.quality[s, i]
            checks = [("null_rate", q[1], rrate(rq[0] + rq[1] + (rq[3] if i < F else 0))),
                      ("type_error_rate", q[2], 0.0)]
            checks.append(("nonfinite_rate" if i < F else "unseen_rate", q[3], rrate(rq[3])))
            for check, k, base in checks:
                if check == "unseen_rate" and not self.enabled("quality", check, field):
                    continue
                rate = int(k) / n
                p = 1.0 if k <= 0 else float(bdtrc(int(k) - 1, n, min(max(base, 0.0), 1.0)))
                out.append(result(check, "quality", field, rate, p, rate - base, n, rn, True,
                                  count=int(k), reference_rate=base))
        return out


def build_reference(cfg, profile, table) -> SliceSketch:
    """The reference table's per-slice counts, read the way ``profile build`` reads it (the
    same columns and encodings as the profile's own reference sketch)."""
    from kernels.window import reference_batch
    from monitor.profile import _column, _floats, _strings

    sl = cfg.slices
    layout = SliceLayout.build(profile, sl.keys, sl.top_k, sl.bins)
    f = cfg.features
    numeric = {n: _floats(_column(table, n, f"features.numeric.{n}")) for n in f.numeric}
    categorical = {n: _strings(_column(table, n, f"features.categorical.{n}"))
                   for n in f.categorical}
    p = cfg.prediction
    score = _floats(_column(table, p.score, "prediction.score")) if p.score else None
    batch = reference_batch(profile, numeric, categorical, score, None, None, None)
    return SliceSketch.empty(layout).update(batch)
