"""End to end with the label stream on: the per-core figure of bench/bench_e2e.py re-measured
with delayed labels joined live, beside the same figure without labels in the same run.

One local broker; a 4-partition prediction topic of the synthetic ~640-byte JSON events
(bench_e2e's workload) and a 4-partition label topic carrying one outcome per event (event
id, label, the time it became known: event time plus a uniform delay up to ``max_delay``, in
label-time order; an event's label in its prediction's partition). Per run, on the same
topics:

- **without labels**: bench_e2e's ``monitor_rate`` (stage 1 + stage 2 in this process: consume,
  decode, window, sketch, publish partials, store state; merge partials, evaluate);
- **with labels**: the same, with ``labels:`` in the config (sliced by channel, a labelled
  reference): stage 1 also consumes the label topic, joins it (pending store, performance
  sketches per window and slice, label state and outbox in the state topic) and publishes
  performance revisions; stage 2 also runs the performance step on every revision (merge
  over partitions, figures per slice, findings against the reference).

"Per core" is prediction events per CPU second of this process (user + system, librdkafka's
threads included), as in bench_e2e: the label messages are work done for those events, not
events of their own (their rate is printed beside).

    python -m bench.bench_e2e_labels [--events 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Consumer, Producer

from bench.bench_e2e import _cpu, monitor_rate
from bench.report import median, publish
from monitor.dev.kafka import DevKafka, ensure_jars
from monitor.dev.synthetic import Scenario, generate
from monitor.dev.workload import RATE, WINDOW_MS, build_reference, config_dict, create_topic, produce

MAX_DELAY_MS = 2 * WINDOW_MS


def labels_config(d: dict, labels_topic: str) -> dict:
    return {**d, "monitor": f"{d['monitor']}-labels",
            "labels": {"topic": labels_topic, "id_field": "event_id", "label_field": "defaulted",
                       "event_time_field": "known_at", "max_delay": f"{MAX_DELAY_MS}ms",
                       "min_labelled": 200, "slices": {"keys": ["channel"], "top_k": 4,
                                                       "min_size": 200}}}


def produce_labels(bootstrap: str, topic: str, cols: dict, part: np.ndarray, seed: int) -> int:
    """One label per event into its prediction's partition, in label-time order."""
    rng = np.random.default_rng(seed)
    known = cols["ts"] + rng.integers(0, MAX_DELAY_MS + 1, cols["ts"].size)
    order = np.argsort(known, kind="stable")
    ids, ys = cols["event_id"].tolist(), cols["defaulted"].tolist()
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                  "queue.buffering.max.messages": 1_000_000})
    for i in order.tolist():
        v = orjson.dumps({"event_id": ids[i], "defaulted": ys[i], "known_at": int(known[i])})
        while True:
            try:
                p.produce(topic, v, partition=int(part[i]))
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    return len(order)


def reference_performance_file(tmp: Path, cfg, profile, seed: int = 1000,
                               n: int = 100_000) -> None:
    """``profile build --labels`` of the training rows build_reference wrote."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from monitor.replay_labels import reference_path, reference_sketch

    cols = generate(Scenario(n_events=n, seed=seed))  # the same rows as build_reference's
    labels = pa.table({"event_id": pa.array(cols["event_id"].tolist(), pa.string()),
                       "defaulted": cols["defaulted"].astype(np.int64),
                       "known_at": cols["ts"]})
    sk = reference_sketch(cfg, profile, pq.read_table(tmp / "train.parquet"), labels)
    reference_path(tmp / "ref.profile").write_bytes(sk.to_bytes())


def monitor_rate_labels(cfg, profile, n: int, n_labels: int) -> tuple[float, float, int, int]:
    """Stage 1 (with the label side) + stage 2 (windows and the performance step) in this
    process; returns (events/s wall, events/s per CPU second, windows closed, performance
    revisions judged)."""
    from monitor.config import kafka_client_config
    from monitor.stage1.partials import PartialMessage
    from monitor.stage2.aggregate import Tables, WindowAggregator
    from monitor.stage2.evaluate import Evaluator
    from monitor.stage2.step import Stage2State, StepResult
    from monitor.stages import make_performance_step, make_source, merge_sketches, window_parts
    from monitor.topics import ensure_topics

    client = kafka_client_config(cfg)
    ensure_topics(cfg, client)
    src = make_source(cfg, profile, client)
    src.consumer.subscribe([cfg.stream.topic, cfg.labels.topic], on_assign=src._on_assign,
                           on_revoke=src._on_revoke)
    while not src.parts:  # join the group before the clock starts
        try:
            src.step(0.2)
        except:  # noqa: E722 - as bench_e2e: leaders still moving on a new topic
            print(f"stage 1 start: {sys.exc_info()[1]}; again", flush=True)
            time.sleep(0.5)
    t0, c0 = time.perf_counter(), _cpu()
    while src.stats.events_in < n or src.labels.stats.labels_in < n_labels:
        src.step(0.2)
    src.idle_timeout_ms = 0  # the stream is over: close the last window now
    src._heartbeat(time.monotonic() + 3600)
    src.close()
    t1, c1 = time.perf_counter(), _cpu()
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
    perf = make_performance_step(cfg, profile)
    state = Stage2State.empty()
    closed = revisions = 0
    for off, v in enumerate(msgs):
        m = PartialMessage.from_bytes(v)
        if m.kind == "performance":
            r = StepResult(off, orjson.loads(orjson.dumps(state.doc)))  # as Stage2Step
            perf(state, r, m, None, tuple)
            state.apply(r)
            revisions += len(r.reports)
            continue
        for w in agg.on_message(m):
            ev.report(w)
            closed += 1
    t3, c3 = time.perf_counter(), _cpu()
    wall, cpu = (t1 - t0) + (t3 - t2), (c1 - c0) + (c3 - c2)
    return n / wall, n / cpu, closed, revisions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    ensure_jars()
    from monitor.config import from_dict

    base, lab, lab_wall, base_wall, judged = [], [], [], [], []
    with DevKafka(heap="1g") as k, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        topic = create_topic(k.bootstrap, 4)
        labels_topic = create_topic(k.bootstrap, 4)
        d = config_dict(tmp, k.bootstrap, topic)
        cfg, profile = build_reference(tmp, d)
        produced = produce(k.bootstrap, topic, Scenario(n_events=a.events, events_per_s=RATE,
                                                        seed=3))
        n_labels = produce_labels(k.bootstrap, labels_topic, produced.cols, produced.partition,
                                  seed=4)
        dl = labels_config(d, labels_topic)
        reference_performance_file(tmp, from_dict(dl, base_dir=tmp, env={}), profile)
        for r in range(a.runs):
            db = dict(d, monitor=f"{d['monitor']}-{r}")
            w, c, closed, _ = monitor_rate(from_dict(db, base_dir=tmp, env={}), profile,
                                           a.events)
            base.append(c)
            base_wall.append(w)
            dr = dict(dl, monitor=f"{dl['monitor']}-{r}")
            w, c, closed_l, revs = monitor_rate_labels(from_dict(dr, base_dir=tmp, env={}),
                                                       profile, a.events, n_labels)
            lab.append(c)
            lab_wall.append(w)
            judged.append(revs)
            print(f"run {r}: without labels {base[-1]:,.0f}/cpu-s ({closed} windows), with "
                  f"labels {lab[-1]:,.0f}/cpu-s ({closed_l} windows, {revs} performance "
                  f"revisions), ratio {lab[-1] / base[-1]:.2f}", flush=True)
    B, L = median(base), median(lab)
    ratio = median([x / y for x, y in zip(lab, base)])
    load = Path("/proc/loadavg").read_text().split()[:3]
    text = f"""
{a.events:,} prediction events (bench_e2e's ~640-byte JSON workload, 4 partitions, windows of
{WINDOW_MS // 1000} s event time, {RATE * WINDOW_MS // 1000:,} events each) and {n_labels:,}
labels on a second 4-partition topic, each delayed uniformly up to {MAX_DELAY_MS // 1000} s
of event time (in its prediction's partition, label-time order); sliced by channel (4 slices +
other), 5 sensitive groups, 200 score bins; a labelled reference. Stage 1 + stage 2 in this
process, as bench_e2e's per-core figure; medians of {a.runs} runs, fresh consumer groups
each. Rates are prediction events per CPU second of this process (per core).

| path | events/s per core | runs |
|---|---|---|
| end to end without labels (same run, same topic) | {B:,.0f} | {', '.join(f'{x:,.0f}' for x in base)} |
| **end to end with the label stream** | **{L:,.0f}** | {', '.join(f'{x:,.0f}' for x in lab)} |
| with labels, wall clock | {median(lab_wall):,.0f} | {', '.join(f'{x:,.0f}' for x in lab_wall)} |

With labels / without = {ratio:.2f} (median of the per-run ratios). The label path also reads
one label message per event: counted as messages, the with-labels path handles
{2 * L:,.0f} messages per CPU second. Performance revisions judged by stage 2 per run:
{', '.join(str(x) for x in judged)}. Load average at the end: {' '.join(load)} (2 cores
shared with other jobs).
"""
    print(text)
    publish("e2e_labels", {
        "e2e.events_per_s_per_core_with_labels": (round(L), "events/s"),
        "e2e.events_per_s_per_core_without_labels_same_run": (round(B), "events/s"),
        "e2e.with_labels_vs_without": (round(ratio, 2), "x"),
    }, text)


if __name__ == "__main__":
    main()
