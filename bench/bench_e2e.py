"""End to end: topic -> decode -> numba sketches -> closed windows -> reports, per core.

One local broker, one 4-partition topic of synthetic ~640-byte JSON events (20 numeric + 3
categorical features, score, prediction, group). In the same run, on the same topic:

- raw confluent-kafka batch consume (the ceiling);
- consume + decode (the columnar batches the kernels need);
- the monitor's stage 1 (consume, decode, window, sketch, publish partials, store state) and
  stage 2 (merge partials in partition order, evaluate every statistic) — timed in process;
- a Faust agent iterating the events one by one (what we would get by passing events
  through Faust).

"Per core" divides events by the CPU seconds the process used (user + system, librdkafka's
threads included), so a run that leans on a second core does not look faster than it is.

    python -m bench.bench_e2e [--events 300000] [--runs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, KafkaException

from bench.bench_kafka import faust_rate
from bench.report import median, publish
from monitor.dev.kafka import DevKafka, ensure_jars
from monitor.dev.synthetic import Scenario, to_json
from monitor.dev.workload import RATE, WINDOW_MS, build_reference, config_dict, create_topic, produce


def _cpu() -> float:
    import os

    t = os.times()
    return t.user + t.system


def consume_rate(bootstrap: str, topic: str, n: int, decoder=None) -> tuple[float, float]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"b-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.max.bytes": 52_428_800, "session.timeout.ms": 6000})
    c.subscribe([topic])
    got, t0, c0 = 0, None, None
    while got < n:
        batch = c.consume(10_000, timeout=1.0)
        if not batch:
            continue
        if t0 is None:
            t0, c0 = time.perf_counter(), _cpu()
        if decoder is not None:
            offs = np.fromiter((m.offset() for m in batch), np.int64, len(batch))
            ts = np.fromiter((m.timestamp()[1] for m in batch), np.int64, len(batch))
            decoder.decode([m.value() for m in batch], offs, ts)
        got += len(batch)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    c.close()
    return n / wall, n / cpu


def monitor_rate(cfg, profile, n: int) -> tuple[float, float, int, int]:
    """Stage 1 + stage 2 in this process; returns (events/s wall, events/s per CPU second,
    windows closed, bytes of state per partition)."""
    from monitor.stage2.aggregate import Tables, WindowAggregator
    from monitor.config import kafka_client_config
    from monitor.stage2.evaluate import Evaluator
    from monitor.stage1.partials import PartialMessage
    from monitor.pipeline import ensure_topics, make_source, merge_sketches, window_parts

    client = kafka_client_config(cfg)
    ensure_topics(cfg, client)
    src = make_source(cfg, profile, client)
    src.consumer.subscribe([cfg.stream.topic], on_assign=src._on_assign,
                           on_revoke=src._on_revoke)
    while not src.parts:  # join the group before the clock starts
        try:
            src.step(0.2)
        except KafkaException as e:  # a topic created a moment ago: leaders still moving
            print(f"stage 1 start: {e}; again", flush=True)
            time.sleep(0.5)
    t0, c0 = time.perf_counter(), _cpu()
    while src.stats.events_in < n:
        src.step(0.2)
    t1, c1 = time.perf_counter(), _cpu()
    state_bytes = int(np.median([len(pw.to_bytes()) for pw in src.parts.values()]))
    src.idle_timeout_ms = 0  # the stream is over: close the last window now
    src._heartbeat(time.monotonic() + 3600)
    src.close()
    # stage 2: read the partials back and merge + evaluate every window
    c = Consumer({**client, "group.id": f"s2-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([cfg.topics.partials])
    msgs, idle = [], 0
    while idle < 3:
        got = c.consume(1000, timeout=1.0)
        idle = 0 if got else idle + 1
        msgs += [m.value() for m in got if m.error() is None]
    c.close()
    t2, c2 = time.perf_counter(), _cpu()
    load = window_parts(cfg, profile)["load_sketch"]
    agg = WindowAggregator(cfg.windows.size_ms, None, lambda b: merge_sketches(b, load),
                           Tables.in_memory())
    ev = Evaluator(cfg, profile)
    closed = 0
    for v in msgs:
        for w in agg.on_message(PartialMessage.from_bytes(v)):
            ev.report(w)
            closed += 1
    t3, c3 = time.perf_counter(), _cpu()
    wall, cpu = (t1 - t0) + (t3 - t2), (c1 - c0) + (c3 - c2)
    return n / wall, n / cpu, closed, state_bytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--faust-events", type=int, default=60_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    ensure_jars()
    from kernels import WindowSketch

    from monitor.config import from_dict
    from monitor.pipeline import make_decoder

    raw, dec, e2e, e2e_cpu, fa = [], [], [], [], []
    with DevKafka(heap="1g") as k, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        topic = create_topic(k.bootstrap, 4)
        d = config_dict(tmp, k.bootstrap, topic)
        cfg, profile = build_reference(tmp, d)
        produced = produce(k.bootstrap, topic, Scenario(n_events=a.events, events_per_s=RATE,
                                                        seed=3))
        ftopic = create_topic(k.bootstrap, 4)
        produce(k.bootstrap, ftopic, Scenario(n_events=a.faust_events, events_per_s=RATE,
                                              seed=4))
        size = float(np.mean([len(m) for m in to_json(
            {key: v[:2000] for key, v in produced.cols.items()})]))
        decoder = make_decoder(cfg, profile)
        for r in range(a.runs):
            raw.append(consume_rate(k.bootstrap, topic, a.events)[1])
            dec.append(consume_rate(k.bootstrap, topic, a.events, decoder)[1])
            dr = dict(d, monitor=f"{d['monitor']}-{r}", kafka=dict(d["kafka"]))
            cfg_r = from_dict(dr, base_dir=tmp, env={})
            w, c, closed, state_bytes = monitor_rate(cfg_r, profile, a.events)
            e2e.append(w)
            e2e_cpu.append(c)
            fa.append(faust_rate(k.bootstrap, ftopic, a.faust_events))
            print(f"run {r}: raw {raw[-1]:,.0f}/cpu-s, consume+decode {dec[-1]:,.0f}/cpu-s, "
                  f"monitor {c:,.0f}/cpu-s ({w:,.0f}/s wall, {closed} windows), "
                  f"faust {fa[-1]:,.0f}/s", flush=True)
        window_bytes = len(WindowSketch.empty(profile).to_bytes())
    R, D, E, EW, F = median(raw), median(dec), median(e2e_cpu), median(e2e), median(fa)
    text = f"""
{a.events:,} events of {size:.0f} bytes on 4 partitions, windows of {WINDOW_MS // 1000} s event
time ({RATE * WINDOW_MS // 1000:,} events each); 20 numeric features on 1000-bin grids, 3
categoricals, score, prediction and group; medians of {a.runs} runs, each with fresh consumer
groups. Rates are events per CPU second of this process (per core), except Faust (wall clock,
one process that uses one core).

| path | events/s per core | runs |
|---|---|---|
| raw confluent-kafka consume | {R:,.0f} | {', '.join(f'{x:,.0f}' for x in raw)} |
| consume + decode to columns | {D:,.0f} | {', '.join(f'{x:,.0f}' for x in dec)} |
| **streamdrift end to end** (stage 1 + stage 2) | **{E:,.0f}** | {', '.join(f'{x:,.0f}' for x in e2e_cpu)} |
| streamdrift end to end, wall clock | {EW:,.0f} | {', '.join(f'{x:,.0f}' for x in e2e)} |
| Faust agent, one event at a time | {F:,.0f} | {', '.join(f'{x:,.0f}' for x in fa)} |

Ratios in this run: consume+decode / raw consume = {D / R:.2f} (target ≥ 0.6); end to end /
raw consume = {E / R:.2f} (target ≥ 0.5); end to end / consume+decode = {E / D:.2f}; end to
end / Faust per event = {E / F:.1f}x (target ≥ 30x). The decoder is the compiled JSON scanner
(kernels/json_scan.py); `decode.*` in bench_decode has its rate alone.

Memory: one open window's sketch serializes to {window_bytes:,} bytes (its arrays are the same
size in memory; it does not grow with the events it has seen); one partition's whole state
(open windows + counters, as stored in the state topic) was {state_bytes:,} bytes at the end of
the run.
"""
    print(text)
    publish("e2e", {
        "e2e.events_per_s_per_core": (round(E), "events/s"),
        "e2e.events_per_s_wall": (round(EW), "events/s"),
        "e2e.consume_decode_events_per_s": (round(D), "events/s"),
        "e2e.raw_consume_events_per_s": (round(R), "events/s"),
        "e2e.consume_decode_vs_raw": (round(D / R, 2), "x"),
        "e2e.end_to_end_vs_raw": (round(E / R, 2), "x"),
        "e2e.end_to_end_vs_faust": (round(E / F, 1), "x"),
        "e2e.faust_per_event_events_per_s": (round(F), "events/s"),
        "e2e.open_window_bytes": (window_bytes, "bytes"),
        "e2e.partition_state_bytes": (state_bytes, "bytes"),
    }, text)


if __name__ == "__main__":
    main()
