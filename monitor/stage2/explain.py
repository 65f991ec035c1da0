"""One fault, one alert: which bad checks of a window a more specific bad check explains."""

from __future__ import annotations

from dataclasses import replace

from kernels.catalogue import DRIFT_FAMILIES, EXPLAINED_BY, FIELD_QUALITY_ORDER
from monitor.stage2.rules import Verdict

#: Per-field quality checks, most specific first (the catalogue's order): when one of them is
#: bad for a field, the checks after it and that field's drift checks are explained by it.
FIELD_QUALITY = tuple(c.name for c in FIELD_QUALITY_ORDER)
_EXPLAINS_DRIFT = {c.name for c in FIELD_QUALITY_ORDER if c.explains_drift}
_DRIFT = DRIFT_FAMILIES


def explain(verdicts: list[Verdict]) -> list[Verdict]:
    """One fault, one alert: a bad check that a more specific check of the same window
    explains is reported as not bad (``why = "explained by <check>"``), in the catalogue's
    order (:data:`kernels.catalogue.FIELD_QUALITY_ORDER`, ``EXPLAINED_BY``).

    - a field's drift checks are explained by a bad quality check of that field that makes
      its values implausible (nulls, wrong types, NaN / inf, unseen categories, values
      outside the reference's range: ×1000 is a unit bug, not drift to retrain on);
    - a field's later quality checks by its earlier ones (``outlier_rate`` by
      ``out_of_range_rate``, ...);
    - a field's ``outlier_rate`` (a heavier tail *within* the plausible range) by the
      field's own bad drift: that is drift, reported and triggered as drift;
    - ``row_outlier_rate`` by ``schema_change`` or any bad per-field quality check;
      ``volume_drop`` by ``bad_event_rate`` (the events are there, unreadable).
    """
    order = {name: i for i, name in enumerate(FIELD_QUALITY)}
    bad_field: dict[str, str] = {}
    bug_field: dict[str, str] = {}
    drifted: dict[str, str] = {}
    for v in verdicts:
        c = v.check
        if not v.bad:
            continue
        if c.family == "quality" and c.check in order:
            for seen, ok in ((bad_field, True), (bug_field, c.check in _EXPLAINS_DRIFT)):
                known = seen.get(c.feature)
                if ok and (known is None or order[c.check] < order[known]):
                    seen[c.feature] = c.check
        elif c.family in _DRIFT:
            drifted.setdefault(c.feature, c.check)
    bad_window = {v.check.check for v in verdicts if v.bad and v.check.feature == "*"}
    out = []
    for v in verdicts:
        c, cause = v.check, None
        if v.bad:
            first = bad_field.get(c.feature)
            if c.family in _DRIFT:
                cause = bug_field.get(c.feature)
            elif c.family == "quality" and first is not None and c.check in order \
                    and order[c.check] > order[first]:
                cause = first
            elif c.family == "quality" and c.check in order and \
                    c.check not in _EXPLAINS_DRIFT and c.feature in drifted:
                cause = drifted[c.feature]
            elif c.check in EXPLAINED_BY:
                causes = [x for x in EXPLAINED_BY[c.check]
                          if x in bad_window or x in bad_field.values()]
                cause = causes[0] if causes else None
        out.append(v if cause is None else
                   replace(v, bad=False, severity=None, why=f"explained by {cause}"))
    return out
