"""The ``slices:`` section of the config: feature drift and data quality per slice of the
window (performance per slice is ``labels.slices``).

.. code-block:: yaml

    slices: {keys: [channel, state], top_k: 5, min_size: 500, bins: 10}

A slice is one value of one key (``channel=web``): per key, the ``top_k`` most frequent
categories of the reference profile, plus ``<key>=other`` for every other value (missing,
null and unseen ones included). Built by :func:`build_slices` (called from
:mod:`monitor.config.build`); a bad field is reported with its path.

>>> build_slices({"keys": ["c"]}, lambda p, m: None, ("c",)).top_k
5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class DriftSlicesConfig:
    keys: tuple[str, ...]
    top_k: int = 5        # per key: the top-k reference categories, then "other"
    min_size: int = 500   # a slice with fewer events in the window is not judged
    bins: int = 10        # numeric: reference-quantile bins; categorical: top bins-1 + other


def build_slices(d: dict[str, Any] | None, bad: Callable[[str, str], None],
                 categorical: tuple[str, ...]) -> DriftSlicesConfig | None:
    """The ``slices`` section, or None (no keys: no slices). ``bad(path, message)`` records
    a problem."""
    if not d or not d.get("keys"):
        return None
    for i, k in enumerate(d["keys"]):
        if k not in categorical:
            bad(f"slices.keys[{i}]", f"{k!r} is not in features.categorical: slices are "
                "categorical features (add it there)")
    return DriftSlicesConfig(keys=tuple(d["keys"]), top_k=int(d.get("top_k", 5)),
                             min_size=int(d.get("min_size", 500)), bins=int(d.get("bins", 10)))
