"""What reading the model version from the events (``model.version_field``) costs stage 1.

The workload of bench/bench_e2e.py (20 numeric + 3 categorical features, JSON of ~630 bytes,
batches of 10,000), half of its events ``v1`` and half ``v2`` (alternating). In the same run:

- ``versions.decode_events_per_s_per_core_baseline``: stage 1's decoder alone (the
  compiled JSON path), events per CPU second;
- ``versions.decode_with_versions_events_per_s_per_core``: the decoder, then the version
  field read by :class:`~monitor.stage1.versions.VersionGate` (a second pass of the compiled
  scanner over the batch's bytes, codes by Arrow) — what stage 1 runs per batch;
- ``versions.window_events_per_s_per_core`` (and ``..._baseline``): events absorbed into
  one partition's windows with one sketch per version (two versions) and with one sketch;
- ``versions.partition_state_bytes`` (and ``..._baseline``): that partition's state
  (``PartitionWindows.to_bytes()``) once every event is absorbed.

Medians of the runs. The bench checks its own output: every event is read with its version,
and the versions' event counts add up to the window's.

    python -m bench.bench_versions [--events 120000] [--runs 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report import median, publish
from monitor.dev.synthetic import Scenario, generate, to_json
from monitor.dev.workload import RATE, build_reference, config_dict
from monitor.stage1.versions import VersionGate
from monitor.stage1.windows import PartitionWindows
from monitor.stages import make_decoder, window_parts

BATCH = 10_000


def _cpu() -> float:
    return time.process_time()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=120_000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = config_dict(Path(tmp), "127.0.0.1:9", "bench")
        cfg, profile = build_reference(Path(tmp), d)
        cols = generate(Scenario(n_events=a.events, events_per_s=RATE, seed=3))
        cols["model_version"] = np.where(np.arange(a.events) % 2 == 0, "v1", "v2").astype(object)
        msgs = to_json(cols)
        decoder = make_decoder(cfg, profile)
        gate = VersionGate("model_version", 4)
        parts = window_parts(cfg, profile)
        batches = [(msgs[lo:lo + BATCH], np.arange(lo, min(lo + BATCH, a.events)))
                   for lo in range(0, a.events, BATCH)]

        def decode(with_versions: bool) -> tuple[float, list]:
            out, n, c0 = [], 0, _cpu()
            for values, offs in batches:
                dec = decoder.decode(values, offs, np.full(offs.size, -1, np.int64))
                if with_versions:
                    dec, _, vers = gate.read(dec, values, offs)
                    out.append((dec.batch, vers))
                else:
                    out.append((dec.batch, None))
                n += dec.batch.n_events
            return n / (_cpu() - c0), out

        def absorb(decoded, versioned: bool) -> tuple[float, int]:
            pw = PartitionWindows(0, cfg.windows.size_ms, None, cfg.windows.allowed_lateness_ms,
                                  parts["new_sketch"])
            n, c0 = 0, _cpu()
            for batch, vers in decoded:
                sel = np.arange(batch.n_events)
                if versioned:
                    assert not vers.admit(pw, sel)
                    batch = vers.batch(batch, sel)
                pw.absorb(batch.offset, batch.event_time_ms, [], batch)
                n += batch.n_events
            rate = n / (_cpu() - c0)
            for w in pw.windows.values():  # the bench checks its own output
                if versioned:
                    assert sum(v.events for v in (w.versions or {}).values()) == w.events
            return rate, len(pw.to_bytes())

        decode(True)  # warm up: load the compiled kernels
        _, warm = decode(True)
        absorb(warm[:2], True)
        absorb(warm[:2], False)
        base, withv, win_b, win_v = [], [], [], []
        bytes_b = bytes_v = 0
        for r in range(a.runs):
            rate, plain = decode(False)
            base.append(rate)
            rate, dv = decode(True)
            withv.append(rate)
            assert sum(int(np.sum(v.codes >= 0)) for _, v in dv) == a.events
            rate, bytes_b = absorb(plain, False)
            win_b.append(rate)
            rate, bytes_v = absorb(dv, True)
            win_v.append(rate)
            print(f"run {r}: decode {base[-1]:,.0f}/cpu-s, with versions {withv[-1]:,.0f}; "
                  f"windows {win_b[-1]:,.0f} -> {win_v[-1]:,.0f}/cpu-s", flush=True)
    B, V, WB, WV = median(base), median(withv), median(win_b), median(win_v)
    text = f"""
{a.events:,} JSON events of the end-to-end workload (two model versions, alternating), in
batches of {BATCH:,}, one partition; medians of {a.runs} runs.

| | without `version_field` | with it (2 versions) | ratio |
|---|---|---|---|
| decode (events per CPU second) | {B:,.0f} | {V:,.0f} | {V / B:.2f} |
| window update (events per CPU second, decode excluded) | {WB:,.0f} | {WV:,.0f} | \
{WV / WB:.2f} |
| partition state (bytes, all events absorbed) | {bytes_b:,} | {bytes_v:,} | \
{bytes_v / bytes_b:.2f} |

The version is read by a second pass of the compiled JSON scanner over the batch's bytes;
the decoder handing the column out of its own pass would remove most of that cost. Each
version's window holds its own sketch, so the state grows with the versions open at once
(bounded by `model.max_versions`).
"""
    print(text)
    publish("versions", {
        "versions.decode_events_per_s_per_core_baseline": (B, "events/s/core"),
        "versions.decode_with_versions_events_per_s_per_core": (V, "events/s/core"),
        "versions.window_events_per_s_per_core": (WV, "events/s/core"),
        "versions.window_events_per_s_per_core_baseline": (WB, "events/s/core"),
        "versions.partition_state_bytes": (bytes_v, "bytes"),
        "versions.partition_state_bytes_baseline": (bytes_b, "bytes"),
    }, text)


if __name__ == "__main__":
    main()
