"""Synthetic traffic for a fictional credit model, with faults injected at known times.

Used by the demo, the integration tests and the benchmarks, so that all three see the same
kind of events: ~700-byte JSON objects with 20 numeric features (half normal, half heavy-tailed
lognormal), 3 categoricals, a score, a predicted class, a label, a sensitive group, an event
id and an event time.

Generation is columnar (numpy); :func:`to_json` turns the columns into messages.

>>> s = Scenario(n_events=1000, seed=1)
>>> cols = generate(s)
>>> len(cols["event_id"]), sorted(cols)[:3]
(1000, ['age_band', 'approved', 'balance'])
>>> len(to_json(cols)) == 1000
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson

NUMERIC = [
    "income", "debt_ratio", "credit_age_m", "utilization", "num_accounts",
    "num_inquiries", "loan_amount", "term_m", "interest_rate", "dti_trend",
    "savings", "monthly_spend", "late_30d", "late_90d", "employment_y",
    "housing_cost", "card_limit", "balance", "payment_ratio", "tenure_m",
]
# features 0, 2, 4, ... normal; 1, 3, 5, ... lognormal (heavy right tail)
CATEGORICAL = {
    "region": (["north", "south", "east", "west", "central"], [0.3, 0.25, 0.2, 0.15, 0.1]),
    "channel": (["web", "app", "branch", "partner"], [0.45, 0.35, 0.15, 0.05]),
    "product": (["personal", "auto", "home", "student", "card", "business"],
                [0.3, 0.2, 0.2, 0.1, 0.15, 0.05]),
}
GROUPS = (["18-25", "26-35", "36-50", "51+"], [0.2, 0.3, 0.3, 0.2])


@dataclass(frozen=True)
class Shift:
    """From ``at_ms`` on, add ``delta_sd`` standard deviations to ``feature``."""

    feature: str
    at_ms: int
    delta_sd: float


@dataclass(frozen=True)
class Fault:
    """From ``at_ms`` until ``until_ms``: ``kind`` is "null" (the field becomes null),
    "missing" (the field disappears), "x1000" (a unit change), "category_flood" (a new
    category value, in ``feature``, a categorical), "rename" (the field is sent as
    ``<feature>_v2``), "silence" (no events at all; ``feature`` is ignored) or "duplicate"
    (a share ``share`` of the events is sent again, with the same ids, right after the
    last event of the span: a producer replaying what it had sent)."""

    feature: str
    kind: str
    at_ms: int
    until_ms: int
    share: float = 0.3


@dataclass(frozen=True)
class FairnessGap:
    """From ``at_ms`` on, a share ``flip`` of ``group``'s approvals become rejections."""

    group: str
    at_ms: int
    flip: float


@dataclass(frozen=True)
class Scenario:
    n_events: int = 100_000
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    events_per_s: float = 1000.0  # event-time rate
    seed: int = 0
    n_numeric: int = 20
    shifts: tuple[Shift, ...] = ()
    faults: tuple[Fault, ...] = ()
    gaps: tuple[FairnessGap, ...] = ()
    jitter_ms: int = 0  # event times out of order by up to this much
    numeric_names: tuple[str, ...] = field(default=tuple(NUMERIC))

    @property
    def features(self) -> list[str]:
        return list(self.numeric_names[: self.n_numeric])


def generate(s: Scenario) -> dict[str, np.ndarray]:
    """Columns of ``s.n_events`` events (object arrays for strings, float arrays with NaN
    for null numerics; a fault "missing" is marked in the ``_missing`` column set)."""
    rng = np.random.default_rng(s.seed)
    n = s.n_events
    t = s.start_ms + (np.arange(n) * (1000.0 / s.events_per_s)).astype(np.int64)
    if s.jitter_ms:
        t = t + rng.integers(-s.jitter_ms, s.jitter_ms + 1, n)
    cols: dict[str, np.ndarray] = {"event_id": np.array(
        [f"evt-{s.seed:03d}-{i:010d}" for i in range(n)], dtype=object), "ts": t,
        "model_version": np.full(n, "credit-risk-v3.2", dtype=object)}
    for j, name in enumerate(s.features):
        if j % 2 == 0:
            x = rng.normal(50.0 + 10 * j, 5.0 + j, n)
            sd = 5.0 + j
        else:
            x = rng.lognormal(1.0 + 0.1 * j, 0.6, n)
            sd = float(np.sqrt((np.exp(0.36) - 1) * np.exp(2 * (1.0 + 0.1 * j) + 0.36)))
        for sh in s.shifts:
            if sh.feature == name:
                x = np.where(t >= sh.at_ms, x + sh.delta_sd * sd, x)
        cols[name] = np.round(x, 5)
    for name, (values, probs) in CATEGORICAL.items():
        cols[name] = np.array(values, dtype=object)[rng.choice(len(values), n, p=probs)]
    g_values, g_probs = GROUPS
    group = np.array(g_values, dtype=object)[rng.choice(len(g_values), n, p=g_probs)]
    cols["age_band"] = group
    lin = (cols[s.features[0]] - 50.0) / 5.0 * 0.4 + rng.normal(0, 1.0, n)
    score = 1.0 / (1.0 + np.exp(-lin))
    cols["score"] = np.round(score, 6)
    approved = (score < 0.5).astype(np.int8)
    label = (rng.random(n) < score).astype(np.int8)  # 1 = defaulted
    for g in s.gaps:
        hit = (group == g.group) & (t >= g.at_ms) & (approved == 1) & (rng.random(n) < g.flip)
        approved = np.where(hit, 0, approved).astype(np.int8)
    cols["approved"] = approved
    cols["defaulted"] = label
    missing: dict[str, np.ndarray] = {}
    for f in s.faults:
        hit = (t >= f.at_ms) & (t < f.until_ms)
        if f.kind == "null":
            cols[f.feature] = np.where(hit, np.nan, cols[f.feature])
            missing.setdefault("_null:" + f.feature, hit)
        elif f.kind == "missing":
            missing["_missing:" + f.feature] = hit
        elif f.kind == "x1000":
            cols[f.feature] = np.where(hit, cols[f.feature] * 1000.0, cols[f.feature])
        elif f.kind == "category_flood":
            cols[f.feature] = np.where(hit, "unknown-partner", cols[f.feature]).astype(object)
        elif f.kind == "rename":
            missing["_missing:" + f.feature] = hit
            cols[f"_renamed:{f.feature}"] = hit
        elif f.kind not in ("silence", "duplicate"):
            raise ValueError(f"unknown fault kind {f.kind!r}")
    cols.update(missing)
    return _rows_faults(cols, s.faults, t, rng)


def _rows_faults(cols: dict[str, np.ndarray], faults, t: np.ndarray, rng) -> dict:
    """Faults that remove or repeat whole events: "silence", then "duplicate"."""
    keep = np.ones(t.size, bool)
    for f in faults:
        if f.kind == "silence":
            keep &= ~((t >= f.at_ms) & (t < f.until_ms))
    order = np.flatnonzero(keep)
    for f in faults:
        if f.kind != "duplicate":
            continue
        span = order[(t[order] >= f.at_ms) & (t[order] < f.until_ms)]
        if span.size == 0:
            continue
        again = np.sort(rng.choice(span, int(round(f.share * span.size)), replace=False))
        cut = int(np.searchsorted(order, span[-1])) + 1
        order = np.concatenate([order[:cut], again, order[cut:]])
    if order.size == t.size and (order == np.arange(t.size)).all():
        return cols
    return {k: v[order] for k, v in cols.items()}


def to_json(cols: dict[str, np.ndarray]) -> list[bytes]:
    """One JSON message per event (nulls where a "null" fault hit, fields dropped where a
    "missing" fault hit). Not a hot path: the generator's cost is not the monitor's."""
    names = [k for k in cols if not k.startswith("_")]
    nulls = {k.split(":", 1)[1]: v for k, v in cols.items() if k.startswith("_null:")}
    drops = {k.split(":", 1)[1]: v for k, v in cols.items() if k.startswith("_missing:")}
    renames = {k.split(":", 1)[1]: v for k, v in cols.items() if k.startswith("_renamed:")}
    lists = {k: cols[k].tolist() for k in names}
    n = len(lists["event_id"])
    out = []
    for i in range(n):
        ev = {k: lists[k][i] for k in names}
        for k, m in nulls.items():
            if m[i]:
                ev[k] = None
        for k, m in renames.items():
            if m[i]:
                ev[f"{k}_v2"] = ev[k]
        for k, m in drops.items():
            if m[i]:
                del ev[k]
        out.append(orjson.dumps(ev))
    return out
