"""What the data-quality checks cost: the monitor end to end with every quality check on,
beside the same monitor with drift only, on the same topic in the same run.

Quality on: event ids hashed and looked up in the duplicate filter, one message in 64 parsed
in full for new fields, range / robust-z / isolation-forest / freshness counts in the window
sketch, every quality check evaluated. Drift only: ``checks.quality.enabled: false`` (the
per-field missing / null / type / NaN counts stay: they are part of the numeric sketch).
Runs alternate (quality, drift, quality, drift, ...) so that machine noise hits both alike;
rates are events per CPU second of the process (per core), medians of the runs.

    python -m bench.bench_quality [--events 300000] [--runs 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.bench_e2e import monitor_rate
from bench.report import median, publish
from monitor.dev.kafka import DevKafka, ensure_jars
from monitor.dev.synthetic import Scenario
from monitor.dev.workload import RATE, WINDOW_MS, build_reference, config_dict, create_topic, produce


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    ensure_jars()
    from monitor.config import from_dict

    quality, drift = [], []
    with DevKafka(heap="1g") as k, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        topic = create_topic(k.bootstrap, 4)
        d = config_dict(tmp, k.bootstrap, topic)
        d["checks"] = {**d["checks"], "quality": {"max_event_delay": "1h"}}
        _, profile = build_reference(tmp, d)
        produce(k.bootstrap, topic, Scenario(n_events=a.events, events_per_s=RATE, seed=3),
                key_by_id=True)
        for r in range(a.runs):
            for on, out in ((True, quality), (False, drift)):
                dr = dict(d, monitor=f"{d['monitor']}-{'q' if on else 'd'}{r}",
                          checks={**d["checks"], "quality": {**d["checks"]["quality"],
                                                             "enabled": on}})
                cfg = from_dict(dr, base_dir=tmp, env={})
                _, cpu, closed, _ = monitor_rate(cfg, profile, a.events)
                out.append(cpu)
                print(f"run {r}: {'quality on ' if on else 'drift only'} {cpu:,.0f} events/cpu-s"
                      f" ({closed} windows)", flush=True)
    Q, D = median(quality), median(drift)
    cost = 1.0 - Q / D
    paired = [1.0 - q / d for q, d in zip(quality, drift)]  # each run with its neighbour
    cost_paired = median(paired)
    text = f"""
{a.events:,} synthetic events on 4 partitions (keyed by event id), windows of
{WINDOW_MS // 1000} s event time ({RATE * WINDOW_MS // 1000:,} events each), 20 numeric + 3
categorical features; stage 1 + stage 2 in one process, as in `bench_e2e`; runs alternate;
medians of {a.runs}.

| monitor | events/s per core | runs |
|---|---|---|
| all quality checks on | {Q:,.0f} | {', '.join(f'{x:,.0f}' for x in quality)} |
| drift only (`checks.quality.enabled: false`) | {D:,.0f} | {', '.join(f'{x:,.0f}' for x in drift)} |

Quality checks cost {cost:.1%} of throughput in this run, comparing the medians; run by run
(each quality run against the drift-only run right after it) the cost was
{', '.join(f'{x:.0%}' for x in paired)}, median {cost_paired:.1%} (target: under 25 %).
"""
    print(text)
    publish("quality", {
        "quality.events_per_s_per_core": (round(Q), "events/s"),
        "quality.drift_only_events_per_s_per_core": (round(D), "events/s"),
        "quality.throughput_cost_fraction": (round(cost, 4), "fraction"),
        "quality.throughput_cost_fraction_paired_median": (round(cost_paired, 4), "fraction"),
    }, text)


if __name__ == "__main__":
    main()
