"""How well the default settings detect: power, delay and false pages over a family of
generated scenarios at 500, 2,000 and 10,000 events per window (issue 13).

The monitor's path is the production one: a profile built from a 50,000-event reference
sample by :func:`monitor.profile.build_profile` (what ``streamdrift profile build`` runs), each
stream replayed window by window by :func:`monitor.replay.replay` (what ``streamdrift replay``
runs: the live decoder, windows, aggregator and evaluator over an in-memory table), and every
window report handed to the default config's :class:`AlertPolicy` (``policy_from_config``),
as stage 2 does. A *page* is a ``firing`` notification of that policy. A drift stream is
detected when a page names the scenario's subject (its feature; for the fairness gap, any
fairness check) at or after the onset window.

Every drift stream has 2 drift-free windows, then the change from the onset window on, for 4
windows. *Delay* is the number of drifted windows seen when the first page came (1: the onset
window itself; with the default ``confirm_windows: 2`` the fastest page has delay 2); *power*
is the share of seeds paged within 2 windows; *detected* the share paged within the 4.
Drift-free streams are 25 windows long; the *false page rate* is pages per window on them.

Beside it, on the same streams: River's ADWIN and KSWIN fed the drifting column per event,
and a naive "any test's p < 0.05" rule over the same reports (:mod:`bench.detection_baselines`).
KSWIN (a scipy KS test per event, ~0.3 ms) runs on fewer seeds and not at 10,000 events.

    python -m bench.bench_detection [--quick] [--json-out PATH]

``--quick`` is a smoke run (one seed, 500 events, short streams); it prints the table and
does not publish figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.detection_baselines import first_after, naive_flags, river_alarms
from bench.detection_scenarios import (LOGNORMAL, NORMAL, SCENARIOS, Scenario, event_values,
                                       reference_table, stream)
from bench.report import median, publish

PRE, POST, FREE_WINDOWS = 2, 4, 25
POWER_WITHIN = 2
DETECTORS = ("monitor", "naive", "adwin", "kswin")


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    seeds: dict[int, int]            # drift streams per scenario, per size
    free_streams: dict[int, int]     # drift-free streams per size (FREE_WINDOWS each)
    kswin_seeds: dict[int, int]      # of those, how many KSWIN also runs on (0: not run)
    kswin_only: tuple[str, ...] = ()  # KSWIN on these scenarios only (empty: all)
    pre: int = PRE
    post: int = POST
    free_windows: int = FREE_WINDOWS
    reference_rows: int = 50_000


FULL = Plan(sizes=(500, 2000, 10_000), seeds={500: 20, 2000: 24, 10_000: 10},
            free_streams={500: 16, 2000: 16, 10_000: 12},
            kswin_seeds={500: 2, 2000: 2, 10_000: 0})
QUICK = Plan(sizes=(500,), seeds={500: 1}, free_streams={500: 1}, kswin_seeds={500: 1},
             kswin_only=("drift_free", "shift_0_3sd"), pre=1, post=2, free_windows=4,
             reference_rows=10_000)


def config_dict() -> dict:
    """The default config for the scenario model: only what the data needs is set."""
    return {
        "monitor": "bench", "kafka": {"bootstrap": "unused:9092"},
        "stream": {"topic": "unused", "event_time": {"field": "ts", "unit": "ms"}},
        "features": {"numeric": NORMAL + LOGNORMAL, "categorical": ["region", "merchant"]},
        "prediction": {"score": "score", "class": "approved", "positive_class": 1},
        "sensitive": {"attribute": "group"},
        "windows": {"size": "1m"}, "reference": {"profile": "bench.profile"},
    }


@dataclass
class Cell:
    """One scenario at one window size: per detector, the delay of every seed (None: not
    detected) and, on drift-free streams, alarmed windows out of windows."""

    delays: dict[str, list[int | None]] = field(default_factory=lambda: {d: [] for d in DETECTORS})
    alarms: dict[str, list[int]] = field(default_factory=lambda: {d: [0, 0] for d in DETECTORS})
    paged_by: dict[str, int] = field(default_factory=dict)
    flagged_windows: list[int] = field(default_factory=lambda: [0, 0])

    def merge(self, other: "Cell") -> "Cell":
        for d in DETECTORS:
            self.delays[d] += other.delays[d]
            self.alarms[d] = [a + b for a, b in zip(self.alarms[d], other.alarms[d])]
        for k, v in other.paged_by.items():
            self.paged_by[k] = self.paged_by.get(k, 0) + v
        self.flagged_windows = [a + b for a, b in zip(self.flagged_windows,
                                                      other.flagged_windows)]
        return self

    def summary(self, d: str) -> dict:
        xs = self.delays[d]
        if not xs:
            return {"runs": 0}
        hit = [x for x in xs if x is not None]
        return {"runs": len(xs), "detected": len(hit) / len(xs),
                "power": sum(x <= POWER_WITHIN for x in hit) / len(xs),
                "median_delay": median([float(x) for x in hit]) if hit else None}


def monitor_run(cfg, profile, s: Scenario, table, onset: int):
    """Reports of the stream and, per window, the pages that name the subject."""
    from monitor.replay import replay
    from monitor.stage2.evaluate import policy_from_config

    reports = list(replay(cfg, profile, table, progress=False))
    policy = policy_from_config(cfg)
    pages, first_checks = [], []
    for r in reports:
        firing = [a for a in policy.update(r).alerts if a.kind == "firing"]
        if s.change is None:  # false pages: notifications, however many keys each holds
            pages.append(len(firing))
            continue
        items = [i for a in firing for i in a.items]
        mine = [i.check for i in items
                if i.feature == s.subject or (s.subject == "fairness" and i.family == "fairness")]
        pages.append(len(mine))
        first_checks.append(mine)
    return reports, np.array(pages), first_checks


def n_streams(s: Scenario, size: int, plan: Plan) -> int:
    return plan.free_streams[size] if s.change is None else plan.seeds[size]


def run_stream(cfg, profile, s: Scenario, size: int, plan: Plan, si: int, k: int) -> Cell:
    """Stream ``k`` of scenario number ``si`` at ``size`` events per window, scored."""
    cell = Cell()
    free = s.change is None
    windows = plan.free_windows if free else plan.pre + plan.post
    onset = plan.pre
    seed = 1_000_003 * (si + 1) + 7919 * size + k
    table = stream(s, size, windows, onset, seed)
    reports, pages, checks = monitor_run(cfg, profile, s, table, onset)
    assert len(reports) == windows, f"{s.name} @ {size}: {len(reports)} reports"
    values = event_values(s, table)
    per_window = {"monitor": pages > 0, "naive": naive_flags(reports),
                  "adwin": river_alarms("adwin", values, size, seed)}
    if k < plan.kswin_seeds[size] and (not plan.kswin_only or s.name in plan.kswin_only):
        per_window["kswin"] = river_alarms("kswin", values, size, seed)
    if free:
        cell.flagged_windows[0] += sum(any(c.flagged for c in r.checks) for r in reports)
        cell.flagged_windows[1] += len(reports)
        for d, f in per_window.items():
            n = int(pages.sum()) if d == "monitor" else int(np.sum(f))
            cell.alarms[d][0] += n
            cell.alarms[d][1] += len(f)
        return cell
    for d, f in per_window.items():
        first = first_after(f, onset)
        cell.delays[d].append(None if first is None else first + 1)
        if d == "monitor" and first is not None:
            name = "+".join(sorted(set(checks[onset + first])))
            cell.paged_by[name] = cell.paged_by.get(name, 0) + 1
    return cell


def upper95(k: int, n: int) -> float:
    """One-sided 95 % upper bound of a rate seen k times in n (Clopper-Pearson)."""
    from scipy.stats import beta

    return 1.0 if n == 0 else (1.0 if k >= n else float(beta.ppf(0.95, k + 1, n - k)))


def _cell_text(sm: dict) -> str:
    if not sm.get("runs"):
        return "not run"
    dl = "–" if sm["median_delay"] is None else f"{sm['median_delay']:g}"
    return f"{sm['detected']:.0%} / {sm['power']:.0%} / {dl}"


def _rate_text(a: list[int]) -> str:
    return "not run" if a[1] == 0 else f"{a[0] / a[1]:.3f} ({a[0]}/{a[1]})"


def render(cells: dict, plan: Plan, level: float, elapsed: float) -> str:
    rows = ["| scenario | events/window | monitor (default policy) | pages by | naive p<0.05 "
            "| ADWIN | KSWIN |", "|---|---|---|---|---|---|---|"]
    for (name, size), c in cells.items():
        if name == "drift_free":
            continue
        by = max(c.paged_by, key=c.paged_by.get) if c.paged_by else "–"
        rows.append(f"| {name} | {size:,} | {_cell_text(c.summary('monitor'))} | {by} | "
                    f"{_cell_text(c.summary('naive'))} | {_cell_text(c.summary('adwin'))} | "
                    f"{_cell_text(c.summary('kswin'))} |")
    free = ["| events/window | windows | monitor false pages/window (95 % upper) | windows "
            "with a flagged check | naive | ADWIN | KSWIN |", "|---|---|---|---|---|---|---|"]
    for size in plan.sizes:
        c = cells["drift_free", size]
        k, n = c.alarms["monitor"]
        free.append(f"| {size:,} | {n} | {k / n:.4f} ({k}/{n}, ≤ {upper95(k, n):.4f}) | "
                    f"{_rate_text(c.flagged_windows)} | {_rate_text(c.alarms['naive'])} | "
                    f"{_rate_text(c.alarms['adwin'])} | {_rate_text(c.alarms['kswin'])} |")
    seeds = ", ".join(f"{plan.seeds[s]} at {s:,}" for s in plan.sizes)
    kswin = ", ".join(f"{plan.kswin_seeds[s]} at {s:,}" for s in plan.sizes)
    return f"""
Scenario model: 4 normal + 4 lognormal numeric features, 2 categoricals (5 and 30 values),
a score, a decision and a sensitive group of 4 (`bench/detection_scenarios.py`); default
config (family level {level}, Bonferroni, `confirm_windows: 2`); profile from a
{plan.reference_rows:,}-event reference through `build_profile`, streams through `replay`
and the default `AlertPolicy`. Drift streams: {plan.pre} drift-free windows, then
{plan.post} drifted ones; seeds per scenario: {seeds} (KSWIN: {kswin}). Run took
{elapsed:.0f} s.

Cells read **detected / paged within {POWER_WITHIN} windows / median delay** (delay = drifted
windows seen when the first page or alarm came, 1 = the onset window; medians over detected
seeds). "pages by": the checks of the monitor's first page, most common set.

{chr(10).join(rows)}

Drift-free streams ({plan.free_windows} windows each): false pages per window (a page is a
`firing` notification; the budget is the family level {level} per window), windows where any
check was flagged, and windows where the baselines alarmed.

{chr(10).join(free)}
"""


def figures(cells: dict, plan: Plan, level: float) -> dict[str, tuple[float | None, str]]:
    rates = {s: cells["drift_free", s].alarms["monitor"] for s in plan.sizes}
    fpr = max(k / n for k, n in rates.values())
    out: dict[str, tuple[float | None, str]] = {
        "detection.false_page_rate": (round(fpr, 5), "pages/window"),
        "detection.family_level": (level, "per window"),
    }
    for s in plan.sizes:
        k, n = rates[s]
        out[f"detection.false_page_rate_{s}"] = (round(k / n, 5), "pages/window")
    size = 2000 if 2000 in plan.sizes else plan.sizes[0]
    for d in DETECTORS:
        pre = "detection." if d == "monitor" else f"detection.{d}."
        v = cells["variance_1_25", size].summary(d)
        sh = cells["shift_0_3sd", size].summary(d)
        if v.get("runs"):
            out[pre + "power_variance_1_25"] = (round(v["power"], 4), "fraction")
        if sh.get("runs"):
            out[pre + "power_shift_0_3sd"] = (round(sh["power"], 4), "fraction")
            out[pre + "delay_windows_shift_0_3sd"] = (sh["median_delay"], "windows")
        if d != "monitor":
            a = [cells["drift_free", s].alarms[d] for s in plan.sizes]
            out[pre + "false_alarm_rate"] = (round(max(k / n for k, n in a if n), 5),
                                             "alarmed windows/window")
    return out


_JOB: tuple = ()


def _task(t: tuple[str, int, int, int]) -> tuple[tuple[str, int, int], Cell]:
    name, size, si, k = t
    cfg, profile, plan = _JOB
    return (name, size, k), run_stream(cfg, profile, SCENARIOS[name], size, plan, si, k)


def _merged(by_seed: dict[int, Cell]) -> Cell:
    out = Cell()
    for k in sorted(by_seed):
        out.merge(by_seed[k])
    return out


class _Serial:
    """``--jobs 1``: the pool's interface, in this process."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    @staticmethod
    def imap_unordered(f, xs):
        return map(f, xs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run; prints, publishes nothing")
    ap.add_argument("--json-out", type=Path, help="also write the per-cell summary here")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    a = ap.parse_args(argv)
    plan = QUICK if a.quick else FULL
    from monitor.config import from_dict
    from monitor.profile import build_profile

    t0 = time.perf_counter()
    cfg = from_dict(config_dict(), env={})
    profile = build_profile(cfg, "reference.parquet", table=reference_table(plan.reference_rows),
                            progress=False)
    global _JOB
    _JOB = (cfg, profile, plan)
    tasks = [(s.name, size, si, k) for size in plan.sizes for si, s in enumerate(SCENARIOS.values())
             for k in range(n_streams(s, size, plan))]
    def cost(t):  # longest first, so that two workers finish together; KSWIN is the slowest
        name, size, _, k = t
        return -size * (plan.free_windows if name == "drift_free" else plan.pre + plan.post) \
            * (8 if k < plan.kswin_seeds[size] else 1)

    tasks.sort(key=cost)
    import river.drift  # noqa: F401  (once, before the fork: it takes seconds)

    got: dict[tuple[str, int], Cell] = {}
    left = {(s.name, size): n_streams(s, size, plan) for s in SCENARIOS.values()
            for size in plan.sizes}
    # fork: the workers inherit the profile and the compiled kernels
    with mp.get_context("fork").Pool(a.jobs) if a.jobs > 1 else _Serial() as pool:
        for (name, size, k), cell in pool.imap_unordered(_task, tasks):
            got.setdefault((name, size), {})[k] = cell
            left[name, size] -= 1
            if left[name, size] == 0:
                c = _merged(got[name, size])
                what = (f"false pages {_rate_text(c.alarms['monitor'])}" if name == "drift_free"
                        else f"monitor {_cell_text(c.summary('monitor'))}")
                print(f"{name:>14} @ {size:>6,}: {what}  ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
    cells = {(s.name, size): _merged(got[s.name, size]) for s in SCENARIOS.values()
             for size in plan.sizes}
    level = cfg.checks.family_level
    text = render(cells, plan, level, time.perf_counter() - t0)
    figs = figures(cells, plan, level)
    fpr = figs["detection.false_page_rate"][0]
    verdict = "≤" if fpr <= level else ">"
    text += (f"\n`detection.false_page_rate` (max over sizes) = {fpr:.4f} {verdict} the family "
             f"level {level}: {'within' if fpr <= level else 'OVER'} the budget.\n\n"
             + "\n".join(f"- `{k}` = {v[0]} {v[1]}" for k, v in figs.items()) + "\n")
    print(text)
    if a.json_out:
        a.json_out.write_text(json.dumps({
            "cells": {f"{n}@{s}": {**{d: c.summary(d) for d in DETECTORS},
                                    "false_alarms": c.alarms, "paged_by": c.paged_by}
                      for (n, s), c in cells.items()},
            "figures": {k: v[0] for k, v in figs.items()}}, indent=1))
    if not a.quick:
        publish("detection", figs, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
