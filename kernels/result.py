"""The record every statistic of a window comes back as."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_NO_DETAIL: Any = object()


@dataclass(frozen=True, init=False)
class Result:
    """One check of one feature (read-only), with the family the catalogue gives it
    (:mod:`kernels.catalogue`): the kernel that computed it knows it, nobody guesses it
    back from names.

    >>> Result("ks", "x", 0.1, 0.5, 0.1, 1000, 5000, True, family="numeric_drift")
    Result(check='ks', feature='x', statistic=0.1, p_value=0.5, effect_size=0.1, \
n_window=1000, n_reference=5000, sufficient=True, detail={}, family='numeric_drift')
    """

    check: str
    feature: str
    statistic: float | None
    p_value: float | None
    effect_size: float | None
    n_window: int
    n_reference: int
    sufficient: bool
    detail: dict[str, Any] = field(default_factory=dict)
    family: str = ""

    def __init__(self, check: str, feature: str, statistic: float | None,
                 p_value: float | None, effect_size: float | None, n_window: int,
                 n_reference: int, sufficient: bool, detail: dict[str, Any] = _NO_DETAIL,
                 family: str = "") -> None:
        # The generated frozen __init__ sets each field through object.__setattr__; one
        # dict update is about twice as fast, and evaluate() builds ~130 results a window.
        self.__dict__.update(check=check, feature=feature, statistic=statistic,
                             p_value=p_value, effect_size=effect_size, n_window=n_window,
                             n_reference=n_reference, sufficient=sufficient,
                             detail={} if detail is _NO_DETAIL else detail, family=family)
