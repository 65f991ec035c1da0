"""One feature's settings: the catalogue's per-feature floors of its kind from the ``checks``
section, then the ``features.rules`` that match it, in file order."""

from __future__ import annotations

from typing import Any

from kernels.catalogue import CHECKS
from monitor.config.settings import ChecksConfig, FeatureRule, FeatureSettings, FrozenMap


def feature_settings(name: str, kind: str, checks: ChecksConfig,
                     rules: list[FeatureRule]) -> FeatureSettings:
    """One feature's settings: the floors of the catalogue's per-feature checks of its kind
    (drift of its kind, the field-quality checks), from ``checks``, then every matching
    rule in file order."""
    base = checks.numeric if kind == "numeric" else checks.categorical
    fam = f"{kind}_drift"
    rows = [c for c in CHECKS if c.per_feature and c.floor_key and (
        c.family == fam or (c.family == "quality" and (c.name != "unseen_rate"
                                                       or kind == "categorical")))]
    floors = {c.name: _config_value(checks, c.floor_key) for c in rows}
    key_to_check = {(c.per_feature, c.floor_key.split(".")[-1]): c.name for c in rows}
    s: dict[str, Any] = dict(name=name, kind=kind, drift_enabled=base.enabled,
                             chi2=getattr(base, "chi2", True),
                             quality_enabled=checks.quality.enabled)
    for rule in rules:
        if not rule.applies_to(name, kind):
            continue
        if rule.range is not None and kind == "numeric":
            s["range"] = rule.range
        for section, values in (("drift", rule.drift), ("quality", rule.quality)):
            for key, v in values.items():
                if key == "enabled":
                    s[f"{section}_enabled"] = v
                elif key == "chi2":
                    s["chi2"] = v
                elif (section, key) in key_to_check:
                    floors[key_to_check[section, key]] = v
    return FeatureSettings(**s, floors=FrozenMap(floors))


def _config_value(checks: ChecksConfig, key: str) -> Any:
    """The value of ``checks.<key>`` (a catalogue floor key like ``numeric.ks_floor``)."""
    section, name = key.split(".")
    return getattr(getattr(checks, section), name)
