"""The scenario family of ``bench_detection``: a small scoring model's events, drift-free or
with one change switched on at a known window, generated columnar from fixed seeds.

The model (not the demo's credit model, so the defaults are tried on a second schema): four
normal features ``n0``-``n3`` (mean 50, sd 10; ``n1`` is null in 0.5 % of events), four
lognormal ones ``l0``-``l3``, ``region`` (5 categories) and ``merchant`` (30), a ``score``,
the decision ``approved`` (1 = approved) and a sensitive ``group`` (4 groups). Every window
holds exactly ``size`` events, spread over one minute of event time (``ts``, ms).

Each scenario changes one thing from its onset window on and names the subject an alert
must be about to count as a detection (a feature name, or ``fairness`` for the fairness
family); ``values`` is what the event-level baselines (ADWIN, KSWIN) are fed.

>>> s = SCENARIOS["shift_0_3sd"]
>>> t = stream(s, size=100, windows=3, onset=1, seed=1)
>>> t.num_rows, int((t.column("ts").to_numpy()[100] - T0) // WINDOW_MS)
(300, 1)
>>> float(t.column("n0").to_numpy()[100:].mean() - t.column("n0").to_numpy()[:100].mean()) > 1
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, ms
WINDOW_MS = 60_000
MEAN, SD = 50.0, 10.0
NORMAL = ["n0", "n1", "n2", "n3"]
LOGNORMAL = ["l0", "l1", "l2", "l3"]
REGIONS = np.array(["north", "south", "east", "west", "central"], object)
REGION_P = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
MERCHANTS = np.array([f"m{i:02d}" for i in range(30)], object)
GROUPS = np.array(["g18-25", "g26-35", "g36-50", "g51+"], object)
GROUP_P = np.array([0.2, 0.3, 0.3, 0.2])
APPROVAL = np.array([0.6, 0.65, 0.7, 0.62])  # per group; disparate impact ~0.86 at worst
NULL_RATE = 0.005  # n1's nulls in training
NEW_MERCHANT = "m-new"


def base_columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """``n`` drift-free events (no time column)."""
    cols: dict[str, np.ndarray] = {}
    for f in NORMAL:
        cols[f] = rng.normal(MEAN, SD, n)
    for f in LOGNORMAL:
        cols[f] = rng.lognormal(1.0, 0.6, n)
    cols["n1"][rng.random(n) < NULL_RATE] = np.nan
    cols["region"] = REGIONS[rng.choice(5, n, p=REGION_P)]
    cols["merchant"] = MERCHANTS[rng.integers(0, 30, n)]
    g = rng.choice(4, n, p=GROUP_P)
    cols["group"] = GROUPS[g]
    cols["approved"] = (rng.random(n) < APPROVAL[g]).astype(np.int64)
    cols["score"] = rng.beta(2.0, 5.0, n)
    return cols


Change = Callable[[dict[str, np.ndarray], np.random.Generator], None]


@dataclass(frozen=True)
class Scenario:
    """``change`` edits a window's columns in place (``None``: drift-free); ``subject`` is
    the feature (or ``fairness``) a page must name to count as a detection; ``values`` the
    column the event-level baselines see, ``kind`` how they see it."""

    name: str
    change: Change | None
    subject: str
    values: str
    kind: str = "numeric"  # numeric | null | category | new_category


def _shift(sd: float) -> Change:
    def f(c, rng):
        c["n0"] += sd * SD
    return f


def _variance(ratio: float) -> Change:
    def f(c, rng):
        c["n0"] = MEAN + (c["n0"] - MEAN) * np.sqrt(ratio)
    return f


def _heavy_tail(c, rng):
    """Same mean and sd, t(4) shape: extreme values more frequent, cut at 4 sd, inside the
    range a 50,000-event reference learns (about +-4.3 sd)."""
    z = rng.standard_t(4, c["n0"].size) / np.sqrt(2.0)
    c["n0"] = MEAN + SD * np.clip(z, -4.0, 4.0)


def _mixture(c, rng):
    """10 % of the values from a narrow second mode at +2 sd."""
    m = rng.random(c["n0"].size) < 0.10
    c["n0"][m] = rng.normal(MEAN + 2 * SD, 0.3 * SD, int(m.sum()))


def _category_mix(c, rng):
    """north 30 % -> 20 %, central 10 % -> 20 %."""
    r = c["region"]
    move = (r == "north") & (rng.random(r.size) < 1 / 3)
    r[move] = "central"


def _new_category(c, rng):
    m = rng.random(c["merchant"].size) < 0.03
    c["merchant"][m] = NEW_MERCHANT


def _null_burst(c, rng):
    """n1's nulls from 0.5 % to 3 %."""
    c["n1"][rng.random(c["n1"].size) < 0.025] = np.nan


def _unit_bug(c, rng):
    c["n2"] *= 1000.0


def _fairness_gap(c, rng):
    """The youngest group's approvals fall from 60 % to 36 % (disparate impact ~0.51)."""
    m = (c["group"] == GROUPS[0]) & (c["approved"] == 1) & (rng.random(c["group"].size) < 0.4)
    c["approved"][m] = 0


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("drift_free", None, "", "n0"),
    Scenario("shift_0_05sd", _shift(0.05), "n0", "n0"),
    Scenario("shift_0_1sd", _shift(0.1), "n0", "n0"),
    Scenario("shift_0_3sd", _shift(0.3), "n0", "n0"),
    Scenario("variance_1_1", _variance(1.1), "n0", "n0"),
    Scenario("variance_1_25", _variance(1.25), "n0", "n0"),
    Scenario("variance_1_5", _variance(1.5), "n0", "n0"),
    Scenario("heavy_tail", _heavy_tail, "n0", "n0"),
    Scenario("mixture", _mixture, "n0", "n0"),
    Scenario("category_mix", _category_mix, "region", "region", "category"),
    Scenario("new_category", _new_category, "merchant", "merchant", "new_category"),
    Scenario("null_burst", _null_burst, "n1", "n1", "null"),
    Scenario("unit_bug", _unit_bug, "n2", "n2"),
    Scenario("fairness_gap", _fairness_gap, "fairness", "approved"),
)}


def reference_table(n: int = 50_000, seed: int = 12_345) -> pa.Table:
    """The training sample the profile is built from (``streamdrift profile build``)."""
    cols = base_columns(np.random.default_rng(seed), n)
    return _table(cols, np.full(n, T0 - 86_400_000, np.int64))


def stream(s: Scenario, size: int, windows: int, onset: int, seed: int) -> pa.Table:
    """``windows`` windows of ``size`` events; from window ``onset`` on, ``s.change``."""
    rng = np.random.default_rng(seed)
    parts, times = [], []
    for w in range(windows):
        c = base_columns(rng, size)
        if s.change is not None and w >= onset:
            s.change(c, rng)
        parts.append(c)
        times.append(T0 + w * WINDOW_MS + np.sort(rng.integers(0, WINDOW_MS, size)))
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return _table(cols, np.concatenate(times))


def event_values(s: Scenario, table: pa.Table) -> np.ndarray:
    """The per-event numbers the baselines are fed: the drifting column's values; a null
    indicator for a null burst; for a categorical, the category's code in the reference's
    order (a new category gets the next code); the decision for a fairness gap."""
    col = table.column(s.values).to_numpy(zero_copy_only=False)
    if s.kind == "null":
        return np.isnan(col).astype(float)
    if s.kind in ("category", "new_category"):
        cats = REGIONS if s.values == "region" else MERCHANTS
        codes = {c: i for i, c in enumerate(cats)}
        return np.array([codes.get(v, len(cats)) for v in col], float)
    return np.asarray(col, float)


def _table(cols: dict[str, np.ndarray], ts: np.ndarray) -> pa.Table:
    arrays = {"ts": pa.array(ts, pa.int64())}
    for k, v in cols.items():
        if v.dtype == object:
            arrays[k] = pa.array(v, pa.string())
        elif v.dtype.kind == "f":
            arrays[k] = pa.array(v, pa.float64(), from_pandas=True)  # NaN -> null
        else:
            arrays[k] = pa.array(v)
    return pa.table(arrays)
