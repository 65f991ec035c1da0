"""The ``checks`` section of the config: each family's switch, its floors, and the alert
policy's false-alarm budget.

Every section has one shape and one constructor (:func:`_section`): ``enabled``, then one
field per floor the check catalogue (:mod:`kernels.catalogue`) gives the section, with the
catalogue's default, then the section's own settings. A floor added to the catalogue is a
config field here with nothing else to write (the schema and docs/config.md are held equal to
the catalogue by tests/test_catalogue.py).

>>> NumericChecks().ks_floor, CategoricalChecks(chi2=False).chi2, QualityChecks().null_rate_max
(0.04, False, 0.01)
>>> [f.name for f in dataclasses.fields(FairnessChecks)]
['enabled', 'disparate_impact_min', 'equal_opportunity_max', 'equalized_odds_max']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kernels.catalogue import CHECKS


def _section(cls_name: str, section: str, *own: tuple[str, type, Any]) -> Any:
    """A frozen dataclass for ``checks.<section>``: ``enabled``, the catalogue's floors of
    the section (catalogue order, its defaults), then ``own`` settings."""
    floors: dict[str, float] = {}
    for c in CHECKS:
        if c.floor_key and c.floor_key.split(".")[0] == section:
            floors.setdefault(c.floor_key.split(".")[1], c.default)
    cls = dataclasses.make_dataclass(
        cls_name, [("enabled", bool, field(default=True)),
                   *((k, float, field(default=v)) for k, v in floors.items()),
                   *((k, t, field(default=v)) for k, t, v in own)], frozen=True)
    cls.__module__, cls.__qualname__ = __name__, cls_name  # picklable by name
    cls.__doc__ = f"checks.{section}: the switch, the catalogue's floors{', ' if own else ''}" \
        + ", ".join(k for k, _, _ in own) + "."
    return cls


#: numeric (and prediction score) drift; wasserstein_floor is in reference standard deviations
NumericChecks = _section("NumericChecks", "numeric")
#: the score's drift (numeric's floors) and the predicted-class rate's floor
PredictionChecks = _section("PredictionChecks", "prediction")
#: categorical drift (chi2_floor is Cohen's w); ``chi2: false`` turns the chi-square test off
CategoricalChecks = _section("CategoricalChecks", "categorical", ("chi2", bool, True))
FairnessChecks = _section("FairnessChecks", "fairness")
#: max_event_delay_ms None: freshness is reported, never judged; max_consumer_lag (records
#: behind) None: not judged; expected_events_per_window None: the volume baseline is learned
QualityChecks = _section(
    "QualityChecks", "quality", ("volume_baseline_windows", int, 12),
    ("expected_events_per_window", int | None, None), ("max_event_delay_ms", int | None, None),
    ("max_consumer_lag", int | None, None))


@dataclass(frozen=True)
class ChecksConfig:
    family_level: float = 0.01
    correction: str = "bonferroni"
    numeric: Any = NumericChecks()
    categorical: Any = CategoricalChecks()
    prediction: Any = PredictionChecks()
    fairness: Any = FairnessChecks()
    quality: Any = QualityChecks()
