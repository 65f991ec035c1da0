"""The check catalogue: every check the monitor reports, declared once.

A row says what a check is (name, family, the statistic its effect size measures), how it
decides (the floor's config key and default, whether it needs a test — a p-value ``"p"`` or a
confidence interval ``"interval"`` —, which minimum sample it needs), where it stands in the
"one fault, one alert" order, and which switch enables it. The alert rules
(:func:`monitor.stage2.evaluate.rules_from_config`), the families the kernels attach to their
results, the config defaults, the config schema's ``checks`` section and the table in
``docs/config.md`` are built from it or held equal to it by ``tests/test_catalogue.py``.

A new statistic is one kernel function, one row here (per family it serves) and one row of
``ORACLES`` in ``tests/reference.py``.

>>> CATALOGUE[("numeric_drift", "ks")].floor_key, CATALOGUE[("numeric_drift", "ks")].default
('numeric.ks_floor', 0.04)
>>> [c.name for c in FIELD_QUALITY_ORDER]
['null_rate', 'type_error_rate', 'nonfinite_rate', 'unseen_rate', 'out_of_range_rate', \
'outlier_rate']
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("numeric_drift", "categorical_drift", "prediction_drift", "quality", "fairness",
            "performance")
DRIFT_FAMILIES = ("numeric_drift", "categorical_drift", "prediction_drift")
#: the ``checks.<section>`` of the config that holds a family's floors and switch
SECTION = {"numeric_drift": "numeric", "categorical_drift": "categorical",
           "prediction_drift": "prediction", "quality": "quality", "fairness": "fairness",
           "performance": "labels"}  # performance: the labels.checks section


@dataclass(frozen=True)
class Check:
    """One check of one family.

    ``floor_key``: the floor's key under ``checks.`` (``None``: the check is reported and never
    alerts, or its floor is fixed: ``default``). ``one_minus``: the key holds a minimum ratio
    and the floor on the effect size (1 - ratio) is ``1 - value``. ``critical``: the critical
    floor as a multiple of the warning floor. ``test``: ``"p"`` (a p-value that enters the
    window's false-alarm budget), ``"interval"`` (a p-value, or else a confidence interval
    wholly beyond the floor) or ``None`` (the floor alone). ``min_sample``: ``"window"``
    (``windows.min_events``), ``"group"`` (``sensitive.min_group_events`` in the smallest
    group), ``"self"`` (the quality check judges its own sufficiency) or ``"labelled"``
    (``labels.min_labelled`` labelled predictions in the scope: performance). ``per_feature``: the
    map of ``features.rules[]`` that may override the floor (``"drift"``, ``"quality"`` or
    ``None``). ``order``: place among one field's quality checks (a bad check explains the
    later ones and, when ``explains_drift``, the field's drift: values the reference makes
    implausible are a data bug; a heavier tail within the plausible range is drift, and the
    field's bad drift explains its ``outlier_rate`` instead). ``switch``: the config key
    that turns it on. ``relative``: a rate against the reference's rate whose floor is at
    least that rate (``detail["reference_rate"]``): it pages on a doubling of a small rate
    that moved by at least the configured floor, never on a few points more of a large
    one."""

    name: str
    family: str
    statistic: str
    floor_key: str | None
    default: float
    test: str | None = None
    min_sample: str = "window"
    switch: str = ""
    per_feature: str | None = None
    order: int | None = None
    one_minus: bool = False
    critical: float | None = 2.0
    explains_drift: bool = True
    relative: bool = False

    @property
    def alerts(self) -> bool:
        """False for checks that are only reported."""
        return self.default != float("inf")


INF = float("inf")


def _drift(family: str) -> list[Check]:
    s = SECTION[family]
    on = f"checks.{s}.enabled"
    pf = "drift" if family == "numeric_drift" else None
    return [
        Check("ks", family, "two-sample KS D on the fine grid", f"{s}.ks_floor", 0.04, "p",
              switch=on, per_feature=pf),
        Check("ad", family, "Anderson-Darling distance: the k-sample A2 divided by "
              "n·m/(n+m)", f"{s}.ad_floor", 0.008, "p", switch=on, per_feature=pf),
        Check("psi", family, "PSI on the reference deciles (test: Pearson chi-square of the "
              "deciles)", f"{s}.psi_floor", 0.035, "p", switch=on, per_feature=pf),
        Check("wasserstein", family, "Wasserstein-1 in reference standard deviations (test: "
              "KS)", f"{s}.wasserstein_floor", 0.15, "p", switch=on, per_feature=pf),
        Check("js", family, "Jensen-Shannon distance (base 2) on the reference deciles "
              "(test: Pearson chi-square of the deciles)", f"{s}.js_floor", 0.075, "p",
              switch=on, per_feature=pf),
        Check("hellinger", family, "Hellinger distance on the reference deciles",
              f"{s}.hellinger_floor", 0.06, "p", switch=on, per_feature=pf),
        Check("mean_shift", family, "|mean − reference mean| in reference standard deviations "
              "(test: two-sample z)", f"{s}.mean_shift_floor", 0.1, "p", switch=on,
              per_feature=pf),
        Check("sd_ratio", family, "|sd / reference sd − 1| (test: log variance ratio with "
              "the reference's kurtosis)", f"{s}.sd_ratio_floor", 0.1, "p", switch=on,
              per_feature=pf),
    ]


def _quality(name: str, statistic: str, key: str | None, default: float, *,
             switch: str = "checks.quality.enabled", per_feature: bool = False,
             order: int | None = None, critical: float | None = 2.0, test: str | None = "p",
             explains_drift: bool = True, relative: bool = False) -> Check:
    return Check(name, "quality", statistic, key and f"quality.{key}", default, test, "self",
                 switch, "quality" if per_feature else None, order, critical=critical,
                 explains_drift=explains_drift, relative=relative)


def _fair(name: str, statistic: str, key: str | None, default: float, test: str | None,
          one_minus: bool = False) -> Check:
    return Check(name, "fairness", statistic, key and f"fairness.{key}", default, test,
                 "group", "checks.fairness.enabled", one_minus=one_minus)


def _perf(figure: str) -> Check:
    """``<figure>_drop``: computed by ``monitor/stage2/performance.py`` from delayed labels.
    (``<figure>_floor``, the absolute minimum of ``labels.checks.floors``, is one more row
    per figure, below.)"""
    stat = "ROC AUC" if figure == "auc" else figure
    return Check(f"{figure}_drop", "performance", f"reference {stat} - window {stat} (test: "
                 "one-sided, below the reference)", "labels.checks.max_drop", 0.05, "p",
                 "labelled", "labels")


def _perf_floor(figure: str) -> Check:
    stat = "ROC AUC" if figure == "auc" else figure
    return Check(f"{figure}_floor", "performance", f"labels.checks.floors.{figure} - window "
                 f"{stat} (bad above 0)", None, 0.0, None, "labelled", "labels",
                 critical=None)


CHECKS: tuple[Check, ...] = (
    *_drift("numeric_drift"),
    Check("chi2", "categorical_drift", "Cohen's w of the chi-square test on the counts",
          "categorical.chi2_floor", 0.1, "p", switch="checks.categorical.chi2",
          per_feature="drift"),
    Check("psi", "categorical_drift", "PSI on the category counts (test: chi-square)",
          "categorical.psi_floor", 0.01, "p", switch="checks.categorical.enabled",
          per_feature="drift"),
    Check("js", "categorical_drift", "Jensen-Shannon distance (base 2) on the counts (test: "
          "chi-square)", "categorical.js_floor", 0.04, "p", switch="checks.categorical.enabled",
          per_feature="drift"),
    Check("hellinger", "categorical_drift", "Hellinger distance on the counts",
          "categorical.hellinger_floor", 0.035, "p", switch="checks.categorical.enabled",
          per_feature="drift"),
    *_drift("prediction_drift"),
    Check("predicted_class_rate", "prediction_drift", "absolute change of the positive "
          "predicted-class rate from the reference's (test: Pearson chi-square of the 2 x 2 "
          "table, 1 df)",
          "prediction.class_rate_floor", 0.05, "p", switch="checks.prediction.enabled"),
    _quality("null_rate", "JSON null rate above the reference's missing rate (floor: at "
             "least the reference's rate, a doubling)", "null_rate_max", 0.01,
             per_feature=True, order=0, relative=True),
    _quality("type_error_rate", "wrong JSON type rate", "type_error_rate_max", 0.01,
             per_feature=True, order=1),
    _quality("nonfinite_rate", "NaN / inf rate above the reference's (floor: at least the "
             "reference's rate, a doubling)", "nonfinite_rate_max", 0.01, per_feature=True,
             order=2, relative=True),
    Check("unseen_rate", "quality", "share of values outside the reference's categories",
          "categorical.unseen_rate_floor", 0.01, None, "window", "checks.categorical.enabled",
          "drift", 3),
    _quality("out_of_range_rate", "rate outside the bounds, above the reference's",
             "out_of_range_rate_max", 0.01, per_feature=True, order=4),
    _quality("outlier_rate", "robust-z outlier rate above the reference's",
             "outlier_rate_max", 0.01, per_feature=True, order=5, explains_drift=False),
    _quality("row_outlier_rate", "isolation-forest outlier rate above the reference's",
             "row_outlier_rate_max", 0.02),
    _quality("bad_event_rate", "unparseable messages / all messages", "bad_event_rate_max",
             0.01),
    _quality("late_event_rate", "late events / all events", "late_event_rate_max", 0.05),
    _quality("duplicate_rate", "repeated event ids / all events", "duplicate_rate_max", 0.01,
             switch="stream.event_id_field"),
    _quality("schema_change", "configured fields absent above the reference, new fields",
             "missing_rate_max", 0.05, test=None),
    _quality("stale_event_rate", "events later than max_event_delay / events",
             "stale_event_rate_max", 0.05, switch="checks.quality.max_event_delay"),
    _quality("volume_drop", "1 - events / baseline", "volume_drop_max", 0.5, test=None),
    _quality("volume_spike", "events / baseline - 1", "volume_spike_max", 1.0, test=None),
    _quality("no_data", "a window without a single message", None, 0.5, critical=2.0,
             test=None),
    _quality("consumer_lag", "records behind / max_consumer_lag", None, 1.0,
             switch="checks.quality.max_consumer_lag", critical=10.0, test=None),
    _fair("selection_rate", "one group's selection rate", None, INF, None),
    _fair("disparate_impact", "1 - (lowest / highest selection rate)",
          "disparate_impact_min", 0.8, "interval", one_minus=True),
    _fair("disparate_impact_ref", "1 - (group / reference group selection rate)",
          "disparate_impact_min", 0.8, "interval", one_minus=True),
    _fair("demographic_parity_diff", "highest - lowest selection rate", None, INF, None),
    _fair("equal_opportunity_diff", "largest TPR difference between groups",
          "equal_opportunity_max", 0.1, "interval"),
    _fair("equal_opportunity_ratio", "1 - lowest / highest TPR", None, INF, None),
    _fair("equalized_odds_diff", "largest of the TPR and FPR differences",
          "equalized_odds_max", 0.1, "interval"),
    _fair("equalized_odds_ratio", "1 - the lower of the TPR and FPR ratios", None, INF, None),
    *(_perf(fig) for fig in ("accuracy", "recall", "precision", "auc")),
    *(_perf_floor(fig) for fig in ("accuracy", "recall", "precision", "auc")),
)

#: (family, name) -> Check
CATALOGUE: dict[tuple[str, str], Check] = {(c.family, c.name): c for c in CHECKS}
#: one field's quality checks, most specific first
FIELD_QUALITY_ORDER: tuple[Check, ...] = tuple(sorted(
    (c for c in CHECKS if c.order is not None), key=lambda c: c.order or 0))
#: window-wide checks that a more specific bad check of the same window explains
EXPLAINED_BY = {"row_outlier_rate": ("schema_change", *(c.name for c in FIELD_QUALITY_ORDER)),
                "volume_drop": ("bad_event_rate",)}


def floor_of(check: Check, value: float | None) -> float:
    """The warning floor on the effect size, from the configured ``value`` of its key."""
    if value is None:
        return check.default if not check.one_minus else 1.0 - check.default
    return 1.0 - value if check.one_minus else float(value)


def table() -> str:
    """The catalogue as the Markdown table of ``docs/config.md`` (held equal by a test)."""
    rows = ["| family | check | effect size | floor key (`checks.`) | default | test | "
            "minimum sample | enabled by |", "|---|---|---|---|---|---|---|---|"]
    for c in CHECKS:
        key = f"`{c.floor_key}`" if c.floor_key else "—"
        default = "reported only" if not c.alerts else (
            f"{c.default:g}" if c.floor_key else f"{c.default:g} (fixed)")
        rows.append(f"| {c.family} | `{c.name}` | {c.statistic} | {key} | {default} | "
                    f"{c.test or '—'} | {c.min_sample} | `{c.switch}` |")
    return "\n".join(rows)
