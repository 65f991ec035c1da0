"""What drift and quality per slice (``slices:``) cost stage 1: state bytes and window time.

The workload of bench/bench_e2e.py (20 numeric + 3 categorical features, 4 partitions, event
i on partition i % 4, 3 s windows of 30,000 events), decoded once, then absorbed by each
partition's :class:`~monitor.stage1.windows.PartitionWindows` twice in the same run: with the
monitor's plain sketches (the baseline) and with ``slices: {keys: [region, channel]}``
(5 + 4 top categories -> 10 slices with the two "other"s; ``top_k`` 5, 10 bins).

- ``slices.partition_state_bytes`` (and ``..._baseline``): the median over partitions of
  ``len(PartitionWindows.to_bytes())`` once every event is absorbed — the method of
  ``e2e.partition_state_bytes`` (the bytes the state topic stores per partition: open
  windows + counters);
- ``slices.window_events_per_s_per_core`` (and ``..._baseline``): events absorbed into the
  windows (sketch updates included, decode excluded) per CPU second, median of the runs.

    python -m bench.bench_slices [--events 240000] [--runs 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report import median, publish
from monitor.config import from_dict
from monitor.dev.synthetic import Scenario, generate
from monitor.dev.workload import RATE, WINDOW_MS, build_reference, config_dict
from monitor.stage1.windows import PartitionWindows
from monitor.stages import make_decoder, window_parts

PARTITIONS, BATCH = 4, 10_000


def _cpu() -> float:
    return time.process_time()  # ns resolution (os.times counts in 10 ms ticks)


def absorb(cfg, profile, batches) -> tuple[float, int]:
    """(events per CPU second, median state bytes per partition)."""
    parts = window_parts(cfg, profile)
    wins = {p: PartitionWindows(p, cfg.windows.size_ms, None, cfg.windows.allowed_lateness_ms,
                                parts["new_sketch"]) for p in range(PARTITIONS)}
    n, c0 = 0, _cpu()
    for p, b in batches:
        wins[p].absorb(b.offset, b.event_time_ms, [], b)
        n += b.n_events
    cpu = _cpu() - c0
    for w in wins.values():  # the bench checks its own output: each key counts every event
        for win in w.windows.values():
            sl = getattr(win.sketch, "slices", None)
            if sl is not None:
                per = sl.layout.per_key
                assert all(int(sl.events[sum(per[:k]):sum(per[:k + 1])].sum()) == win.events
                           for k in range(len(per))), "slice counts lost events"
    return n / cpu, int(np.median([len(w.to_bytes()) for w in wins.values()]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=240_000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        d = config_dict(tmp, "127.0.0.1:9", "bench")
        cfg, profile = build_reference(tmp, d)
        sliced = from_dict({**d, "slices": {"keys": ["region", "channel"]}}, base_dir=tmp,
                           env={})
        import pyarrow as pa

        cols = generate(Scenario(n_events=a.events, events_per_s=RATE, seed=3))
        table = pa.table({k: v for k, v in cols.items() if not k.startswith("_")})
        part = np.arange(table.num_rows) % PARTITIONS
        decoder = make_decoder(cfg, profile)
        batches = []
        for p in range(PARTITIONS):
            idx = np.flatnonzero(part == p)
            t = table.take(idx)
            dec = decoder.decode_table(t, offsets=np.arange(idx.size, dtype=np.int64)).batch
            for lo in range(0, idx.size, BATCH):
                batches.append((p, dec.take(np.arange(lo, min(lo + BATCH, idx.size)))))
        batches.sort(key=lambda pb: int(pb[1].offset[0]))  # partitions interleaved
        absorb(cfg, profile, batches[:2])  # warm up: load the compiled kernels
        absorb(sliced, profile, batches[:2])
        base, with_s, base_b, with_b = [], [], 0, 0
        for r in range(a.runs):
            rate, base_b = absorb(cfg, profile, batches)
            base.append(rate)
            rate, with_b = absorb(sliced, profile, batches)
            with_s.append(rate)
            print(f"run {r}: windows {base[-1]:,.0f}/cpu-s, with slices {with_s[-1]:,.0f}/cpu-s;"
                  f" state {base_b:,} -> {with_b:,} bytes", flush=True)
    B, S = median(base), median(with_s)
    n_slices = 10
    text = f"""
{a.events:,} events of the end-to-end workload on {PARTITIONS} partitions, windows of
{WINDOW_MS // 1000} s ({RATE * WINDOW_MS // 1000:,} events each), decoded once; each partition's
windows absorb its batches of {BATCH:,} with the plain sketches and with
`slices: {{keys: [region, channel]}}` ({n_slices} slices, 10 bins), medians of {a.runs} runs.

| | plain | with slices | ratio |
|---|---|---|---|
| partition state (bytes, median over partitions) | {base_b:,} | {with_b:,} | \
{with_b / base_b:.3f} |
| window update (events per CPU second, decode excluded) | {B:,.0f} | {S:,.0f} | \
{S / B:.2f} |

The slice counts are integers on a fixed layout (per slice: 10 bins per numeric feature, 10
per categorical, 4 quality counters per field), so their bytes depend on the profile and the
slice config only, never on the events.
"""
    print(text)
    publish("slices", {
        "slices.partition_state_bytes": (with_b, "bytes"),
        "slices.partition_state_bytes_baseline": (base_b, "bytes"),
        "slices.window_events_per_s_per_core": (S, "events/s/core"),
        "slices.window_events_per_s_per_core_baseline": (B, "events/s/core"),
    }, text)


if __name__ == "__main__":
    main()
