"""End to end: topic -> decode -> numba sketches -> closed windows -> reports, per core.

One local broker, one 4-partition topic of synthetic ~640-byte JSON events (20 numeric + 3
categorical features, score, prediction, group). In the same run, on the same topic:

- raw confluent-kafka batch consume (the ceiling);
- consume + decode (the columnar batches the kernels need);
- the monitor's stage 1 (consume, decode, window, sketch, publish partials, store state) and
  stage 2 (merge partials in partition order, evaluate every statistic) — timed in process;
- a Faust agent iterating the events one by one (what we would get by passing events
  through Faust);
- one worker (``streamdrift run``) with stage 1 in 2 processes and in 1, plus stage 2, fed
  while it runs: wall clock (bench/worker_wall.py).

"Per core" divides events by the CPU seconds the process used (user + system, librdkafka's
threads included), so a run that leans on a second core does not look faster than it is.

    python -m bench.bench_e2e [--events 300000] [--runs 3] [--worker-events 600000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer

from bench.bench_kafka import faust_rate
from bench.report import median, publish
from bench.worker_wall import worker_rate
from monitor.dev.kafka import DevKafka, ensure_jars
from monitor.dev.synthetic import Scenario, generate, to_json
from monitor.stage1.columns import message_columns
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
            values, _, offs, ts = message_columns(batch)  # as stage 1 gathers them
            decoder.decode(values, offs, ts)
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
        except:  # noqa: E722 - leaders still moving on a new topic; confluent-kafka raises
            # its KafkaError as is (no Exception subclass) or wrapped in a KafkaException
            print(f"stage 1 start: {sys.exc_info()[1]}; again", flush=True)
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
    ap.add_argument("--worker-events", type=int, default=600_000)
    a = ap.parse_args()
    ensure_jars()
    from kernels import WindowSketch

    from monitor.config import from_dict
    from monitor.pipeline import make_decoder

    raw, dec, e2e, e2e_cpu, fa, w2, w1 = [], [], [], [], [], [], []
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
        wmsgs = to_json(generate(Scenario(n_events=a.worker_events, events_per_s=RATE,
                                          seed=6)))
        for r in range(a.runs):
            raw.append(consume_rate(k.bootstrap, topic, a.events)[1])
            dec.append(consume_rate(k.bootstrap, topic, a.events, decoder)[1])
            dr = dict(d, monitor=f"{d['monitor']}-{r}", kafka=dict(d["kafka"]))
            cfg_r = from_dict(dr, base_dir=tmp, env={})
            w, c, closed, state_bytes = monitor_rate(cfg_r, profile, a.events)
            e2e.append(w)
            e2e_cpu.append(c)
            fa.append(faust_rate(k.bootstrap, ftopic, a.faust_events))
            w2.append(worker_rate(k.bootstrap, tmp, d, wmsgs, 2, f"w2-{r}"))
            w1.append(worker_rate(k.bootstrap, tmp, d, wmsgs, 1, f"w1-{r}"))
            print(f"run {r}: raw {raw[-1]:,.0f}/cpu-s, consume+decode {dec[-1]:,.0f}/cpu-s, "
                  f"monitor {c:,.0f}/cpu-s ({w:,.0f}/s wall, {closed} windows), "
                  f"faust {fa[-1]:,.0f}/s, worker wall 2 procs {w2[-1]:,.0f}/s, "
                  f"1 proc {w1[-1]:,.0f}/s", flush=True)
        window_bytes = len(WindowSketch.empty(profile).to_bytes())
    R, D, E, EW, F = median(raw), median(dec), median(e2e_cpu), median(e2e), median(fa)
    W2, W1 = median(w2), median(w1)
    load = Path("/proc/loadavg").read_text().split()[:3]
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

One worker, wall clock (`streamdrift run`, stage 2 in the parent; {len(wmsgs):,} events fed
after every stage is ready, until `/metrics` counts them all; bench/worker_wall.py):

| worker | events/s wall | runs |
|---|---|---|
| stage 1 in 2 processes (`--source-processes 2`) | {W2:,.0f} | {', '.join(f'{x:,.0f}' for x in w2)} |
| stage 1 in 1 process | {W1:,.0f} | {', '.join(f'{x:,.0f}' for x in w1)} |

2 processes / 1 = {W2 / W1:.2f}x. Load average at the end of the run: {' '.join(load)} (the
machine's 2 cores are shared with other jobs: wall-clock figures move with that load more
than the per-CPU-second ones).

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
        "e2e.worker_wall_events_per_s": (round(W2), "events/s"),
        "e2e.worker_wall_events_per_s_1proc": (round(W1), "events/s"),
    }, text)


if __name__ == "__main__":
    main()
