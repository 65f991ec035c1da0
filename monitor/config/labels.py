"""The ``model:`` and ``labels:`` sections of the config: which model version the monitor
watches, and where its delayed labels come from and how performance is judged.

.. code-block:: yaml

    model: {name: churn, version: "2026-11-30"}
    # or, when one stream carries several versions (canary, shadow, rollout):
    model: {name: churn, version_field: model_version, max_versions: 4}
    labels:
      topic: churn-labels          # partitioned like stream.topic, keyed by event id
      id_field: event_id           # matches stream.event_id_field of the predictions
      label_field: churned
      event_time_field: ts         # when the outcome was known (ms since the epoch)
      max_delay: 1h                # a prediction waits this long (label time) for its label
      positive_label: 1            # default: prediction.positive_label
      min_labelled: 200            # performance checks wait for this many labels per scope
      slices: {keys: [channel, state], top_k: 5, min_size: 200}  # per key: top-k + other
      checks: {alpha: 0.01, max_drop: 0.05, floors: {accuracy: 0.7}}

Built by :func:`build_model` / :func:`build_labels` (called from
:mod:`monitor.config.build`); a bad field is reported with its path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from monitor.config.settings import FrozenMap, parse_duration

FIGURES = ("accuracy", "recall", "precision", "auc")


MAX_VERSIONS = 4  # default bound on the versions one partition keeps windows open for


@dataclass(frozen=True)
class ModelConfig:
    """``version_field``: the event field that names the version of each event (None: every
    event is ``version``); each version gets its own windows, reports and alert state, and
    ``version`` is then the version of windows without events. ``max_versions``: versions
    one source partition keeps windows open for at a time (events of more are dead-lettered
    as ``too_many_model_versions``)."""

    name: str
    version: str = "unversioned"
    version_field: str | None = None
    max_versions: int = MAX_VERSIONS

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class SlicesConfig:
    keys: tuple[str, ...] = ()
    top_k: int = 5
    min_size: int = 200


@dataclass(frozen=True)
class LabelChecks:
    alpha: float = 0.01
    max_drop: float = 0.05
    floors: FrozenMap = field(default_factory=FrozenMap)  # figure -> absolute minimum


@dataclass(frozen=True)
class LabelsConfig:
    topic: str
    id_field: str
    label_field: str
    event_time_field: str
    max_delay_ms: int
    positive_label: str | int | bool = 1
    min_labelled: int = 200
    slices: SlicesConfig = SlicesConfig()
    checks: LabelChecks = LabelChecks()
    n_bins: int = 200  # score histogram bins per cell (AUC bound ~ 1 / (2 n_bins))


def build_model(d: dict[str, Any] | None, monitor: str) -> ModelConfig:
    d = d or {}
    return ModelConfig(name=str(d.get("name", monitor)),
                       version=str(d.get("version", "unversioned")),
                       version_field=d.get("version_field"),
                       max_versions=int(d.get("max_versions", MAX_VERSIONS)))


def build_labels(d: dict[str, Any] | None, bad: Callable[[str, str], None],
                 categorical: tuple[str, ...], positive_label: Any,
                 event_id_field: str | None) -> LabelsConfig | None:
    """The ``labels`` section, or None. ``bad(path, message)`` records a problem."""
    if not d:
        return None
    if not event_id_field:
        bad("stream.event_id_field", "required with labels: predictions and labels are "
            "joined by event id")
    s = d.get("slices") or {}
    for i, k in enumerate(s.get("keys", ())):
        if k not in categorical:
            bad(f"labels.slices.keys[{i}]", f"{k!r} is not in features.categorical: slices "
                "are categorical features (add it there)")
    c = d.get("checks") or {}
    floors = c.get("floors") or {}
    for k in floors:
        if k not in FIGURES:
            bad(f"labels.checks.floors.{k}", f"unknown figure; use one of {', '.join(FIGURES)}")
    try:
        delay = parse_duration(d["max_delay"])
    except ValueError as e:
        bad("labels.max_delay", str(e) if "no unit" in str(e)
            else "not a duration: write e.g. 30m, 6h or 2d")
        delay = 0
    return LabelsConfig(
        topic=d["topic"], id_field=d["id_field"], label_field=d["label_field"],
        event_time_field=d["event_time_field"], max_delay_ms=delay,
        positive_label=d.get("positive_label", positive_label),
        min_labelled=int(d.get("min_labelled", 200)),
        slices=SlicesConfig(keys=tuple(s.get("keys", ())), top_k=int(s.get("top_k", 5)),
                            min_size=int(s.get("min_size", 200))),
        checks=LabelChecks(alpha=float(c.get("alpha", 0.01)),
                           max_drop=float(c.get("max_drop", 0.05)), floors=FrozenMap(floors)),
        n_bins=int(d.get("n_bins", 200)))

