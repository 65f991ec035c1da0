"""``streamdrift replay`` throughput on a large file: replay.events_per_s.

A Parquet file of ``--events`` synthetic events (monitor/dev/synthetic.py, written in chunks
of a million, 10 million by default, 30,000 events per 3-second window) is replayed against a
reference profile of 100,000 training rows, all checks on, as `streamdrift replay` does
(file read included, reports written to /dev/null's equivalent: counted, not kept). The
baseline of the same run is reading the same file with pyarrow alone, which no replay can
beat: the ratio says how much of replay's time is the monitor's own work. Runs alternate
(read, replay, read, replay ...); figures are medians of wall-clock rates.

    python -m bench.bench_replay [--events 10000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.report import median, publish
from monitor.config import from_dict
from monitor.dev.synthetic import Scenario, generate

START_MS = 1_767_225_600_000
RATE = 10_000  # events per second of event time
CHUNK = 1_000_000


def config(tmp: Path) -> dict:
    return {
        "monitor": "bench-replay",
        "kafka": {"bootstrap": "127.0.0.1:1"},
        "stream": {"topic": "events", "event_time": {"field": "ts", "unit": "ms"},
                   "event_id_field": "event_id"},
        "features": {"numeric": Scenario().features,
                     "categorical": ["region", "channel", "product"]},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted"},
        "sensitive": {"attribute": "age_band", "reference_group": "36-50"},
        "windows": {"size": "3s", "allowed_lateness": "500ms", "min_events": 1000},
        "reference": {"profile": str(tmp / "ref.profile")},
    }


def write_events(path: Path, n: int) -> None:
    writer = None
    for i, lo in enumerate(range(0, n, CHUNK)):
        k = min(CHUNK, n - lo)
        cols = generate(Scenario(n_events=k, start_ms=START_MS + lo * 1000 // RATE,
                                 events_per_s=RATE, seed=100 + i))
        t = pa.table({c: v for c, v in cols.items() if not c.startswith("_")})
        if writer is None:
            writer = pq.ParquetWriter(path, t.schema)
        writer.write_table(t, row_group_size=262_144)
    writer.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    from monitor.profile import build_profile
    from monitor.files import read_table
    from monitor.replay import replay

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = from_dict(config(tmp), base_dir=tmp, env={})
        train = generate(Scenario(n_events=100_000, seed=1))
        pq.write_table(pa.table({k: v for k, v in train.items() if not k.startswith("_")}),
                       tmp / "train.parquet")
        profile = build_profile(cfg, tmp / "train.parquet", progress=False)
        t0 = time.perf_counter()
        write_events(tmp / "events.parquet", a.events)
        print(f"{a.events:,} events written in {time.perf_counter() - t0:.0f} s "
              f"({(tmp / 'events.parquet').stat().st_size / 1e6:.0f} MB)", flush=True)
        reads, replays, windows = [], [], 0
        for run in range(a.runs):
            gc.collect()
            t0 = time.perf_counter()
            n = read_table(tmp / "events.parquet", progress=False).num_rows
            reads.append(n / (time.perf_counter() - t0))
            assert n == a.events
            gc.collect()
            t0 = time.perf_counter()
            table = read_table(tmp / "events.parquet", progress=False)
            windows = sum(1 for _ in replay(cfg, profile, table, progress=False))
            replays.append(a.events / (time.perf_counter() - t0))
            del table
            print(f"run {run + 1}: read {reads[-1]:,.0f} events/s, replay {replays[-1]:,.0f} "
                  f"events/s ({windows} windows)", flush=True)
    expected = -(-a.events // (RATE * 3))
    assert windows == expected, f"{windows} windows reported, expected {expected}"
    rep, rd = median(replays), median(reads)
    print(f"replay {rep:,.0f} events/s = {rep / rd:.3f} of a bare pyarrow read ({rd:,.0f})")
    publish("replay", {
        "replay.events_per_s": (round(rep), "events/s"),
        "replay.read_events_per_s": (round(rd), "events/s"),
        "replay.ratio_to_read": (round(rep / rd, 4), "ratio"),
    }, f"""
`streamdrift replay` over a Parquet file of {a.events:,} synthetic events (20 numeric, 3
categorical features, score, class, label, sensitive group; {windows} windows of 3 s at
10,000 events/s), every check on, against a profile of 100,000 training rows: file read,
decode, window sketches, evaluation and alert verdicts, in one process (wall clock).
Medians of {a.runs} runs, alternating with the baseline.

| | events/s (median) | runs |
|---|---:|---|
| replay (read + decode + windows + reports) | {rep:,.0f} | {", ".join(f"{x:,.0f}" for x in replays)} |
| baseline: pyarrow reads the same file | {rd:,.0f} | {", ".join(f"{x:,.0f}" for x in reads)} |

replay = {rep / rd:.3f} of the bare read: the monitor's own work (decode of the Arrow columns,
sketch updates, statistics) is where replay's time goes, not the file.
""")


if __name__ == "__main__":
    main()
