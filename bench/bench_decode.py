"""Decode rate: JSON message batches -> ColumnBatch, against the alternatives we considered.

Workload: monitor/synthetic events (20 numeric + 3 categorical + score + class + label +
group + id + ts + model version, ~640 bytes of JSON each), in batches of 10,000 like the
source loop consumes them. One core; each figure is the median of ``--repeats`` runs.

- ``native``: :class:`monitor.stage1.decode.Decoder` as stage 1 runs it: the compiled scanner
  (kernels/json_scan.py) over the batch's concatenated bytes, numbers by Clinger's fast path
  or one Arrow cast, strings through one Arrow array each, whole-array states and codes;
- ``native_with_garbage``: the same batches with one garbage message first (that message
  goes the general path, the rest stays compiled);
- ``decoder``: ``Decoder(native=False)``, the general path (msgspec typed parse per message,
  C-level transpose, one Arrow conversion per column);
- ``decoder_fallback``: the general path with one garbage message first, so every message
  of every batch takes the per-message classification path (the worst case);
- ``arrow_read_json``: ``pyarrow.json.read_json`` over the newline-joined batch with an
  explicit schema (1 thread / all threads), columns to numpy — what the first design
  suggested; it cannot tell a missing field from a null and fails whole batches on any type
  mismatch, so it would need a fallback too;
- ``orjson_gather``: ``orjson.loads`` per message, then a per-field list comprehension;
- ``avro_fastavro``: the same events in Avro, Confluent wire format, through
  ``Decoder.decode_avro`` (fastavro ``schemaless_reader`` per message, the writer schema from
  a warm registry cache, then the general column path) — beside the JSON rows.

Times are CPU seconds of the process (``time.process_time``, counting Arrow's threads too):
on a shared 2-core machine, wall time measures the neighbours. ``decode.buffer_us_per_batch``
is what concatenating a batch's values into one buffer + offsets costs (part of ``native``).

    python -m bench.bench_decode [--events 50000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pj

from bench.report import median, publish
from monitor.config import from_dict
from monitor.stage1.decode import Decoder
from monitor.dev.synthetic import CATEGORICAL, GROUPS, NUMERIC, Scenario, generate, to_json

BATCH = 10_000
# the reference's columns the config does not read: stage 1's decoder knows them from the
# profile (decoder_for), so they are not new field names
KNOWN = ("model_version",)


def config():
    return from_dict({
        "monitor": "bench", "kafka": {"bootstrap": "127.0.0.1:9092"},
        "stream": {"topic": "t", "event_time": {"field": "ts"}, "event_id_field": "event_id"},
        "features": {"numeric": NUMERIC, "categorical": list(CATEGORICAL)},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted",
                       "positive_label": 0},
        "sensitive": {"attribute": "age_band"},
        "windows": {"size": "1m"}, "reference": {"profile": "/dev/null"}}, env={})


def arrow_schema() -> pa.Schema:
    return pa.schema([pa.field(n, pa.float64()) for n in NUMERIC + ["score"]]
                     + [pa.field(n, pa.string()) for n in list(CATEGORICAL) + ["age_band"]]
                     + [pa.field(n, pa.int64()) for n in ("approved", "defaulted", "ts")])


def rates(fns: dict, batches, repeats) -> dict[str, float]:
    """Events/s of each approach; the approaches take turns within every repeat, so a
    neighbour's load on this shared machine hits them alike."""
    n = sum(len(b) for b in batches)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.process_time()
            for b in batches:
                fn(b)
            times[k].append(time.process_time() - t0)
    return {k: n / median(t) for k, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    msgs = to_json(generate(Scenario(n_events=args.events, seed=3)))
    size = sum(map(len, msgs)) / len(msgs)
    batches = [msgs[i:i + BATCH] for i in range(0, len(msgs), BATCH)]
    cats = {k: v[0] for k, v in CATEGORICAL.items()}
    dec = Decoder(config(), cats, GROUPS[0], known_fields=KNOWN, native=False)
    nat = Decoder(config(), cats, GROUPS[0], known_fields=KNOWN)
    zeros = {len(b): (np.arange(len(b)), np.zeros(len(b), np.int64)) for b in batches}
    zeros.update({len(b) + 1: (np.arange(len(b) + 1), np.zeros(len(b) + 1, np.int64))
                  for b in batches})

    # check the output before timing it
    out = dec.decode(batches[0], *zeros[len(batches[0])])
    assert not out.fallback and not out.bad and out.batch.n_events == len(batches[0])
    fb = dec.decode([b"garbage"] + batches[0], *zeros[len(batches[0]) + 1])
    assert fb.fallback and len(fb.bad) == 1
    assert np.array_equal(fb.batch.numeric, out.batch.numeric)
    for b in batches:  # the compiled path: whole batches, the same columns bit for bit
        o = nat.decode(b, *zeros[len(b)])
        g = dec.decode(b, *zeros[len(b)])
        assert o.fallback_messages == 0 and not o.bad
        assert o.batch.numeric.view(np.uint64).tolist() == g.batch.numeric.view(np.uint64).tolist()
        assert o.batch.categorical.tolist() == g.batch.categorical.tolist()
        assert o.batch.event_id_hash.tolist() == g.batch.event_id_hash.tolist()
        assert o.samples == g.samples and o.samples
    og = nat.decode([b"garbage"] + batches[0], *zeros[len(batches[0]) + 1])
    assert og.fallback_messages == 1 and len(og.bad) == 1

    schema = arrow_schema()

    def arrow(b, threads):
        t = pj.read_json(io.BytesIO(b"\n".join(b)),
                         read_options=pj.ReadOptions(use_threads=threads, block_size=1 << 20),
                         parse_options=pj.ParseOptions(explicit_schema=schema,
                                                       unexpected_field_behavior="ignore"))
        assert t.num_rows == len(b)
        return [t.column(n).to_numpy() for n in NUMERIC]

    def orjson_gather(b):
        ds = [orjson.loads(m) for m in b]
        cols = {n: np.array([d.get(n) for d in ds], np.float64) for n in NUMERIC + ["score"]}
        cols.update({n: [d.get(n) for d in ds] for n in list(CATEGORICAL) + ["age_band"]})
        return cols

    avro_dec, avro_batches = _avro(cats, batches)

    figs = rates({
        "native": lambda b: nat.decode(b, *zeros[len(b)]),
        "native_with_garbage": lambda b: nat.decode([b"garbage"] + b, *zeros[len(b) + 1]),
        "decoder": lambda b: dec.decode(b, *zeros[len(b)]),
        "decoder_fallback": lambda b: dec.decode([b"garbage"] + b, *zeros[len(b) + 1]),
        "arrow_read_json_1thread": lambda b: arrow(b, False),
        "arrow_read_json_threads": lambda b: arrow(b, True),
        "orjson_gather": orjson_gather,
        "avro_fastavro": lambda b: avro_dec.decode(avro_batches[id(b)], *zeros[len(b)]),
    }, batches, args.repeats)
    base, og = figs["arrow_read_json_1thread"], figs["orjson_gather"]
    buf_us = _buffer_cost(nat, batches, args.repeats)
    lines = [f"{args.events} synthetic events of {size:.0f} bytes of JSON on average, batches "
             f"of {BATCH}; median of {args.repeats} runs, CPU time of the process.", "",
             "| approach | events/s | vs orjson + gather | vs pyarrow read_json (1 thread) |",
             "|---|---:|---:|---:|"]
    for k, v in figs.items():
        lines.append(f"| {k} | {v:,.0f} | {v / og:.2f}x | {v / base:.2f}x |")
        print(f"{k:28s} {v:12,.0f} events/s  {v / og:5.2f}x orjson  {v / base:5.2f}x arrow")
    print(f"buffer + offsets from a list of values: {buf_us:,.0f} us per batch of {BATCH}")
    lines += ["", f"Concatenating a batch's values into one buffer + offsets (part of `native`): "
              f"{buf_us:,.0f} µs per batch of {BATCH}.", "",
              "`native` and `decoder` output is checked before timing (no bad messages, all "
              "events, the compiled columns equal to the general path's bit for bit, the "
              "fallback equal to the fast path). The Arrow and orjson rows only parse and "
              "gather columns: no states, codes, hashes or event-time checks, so they are "
              "upper bounds for those designs. `arrow_read_json_threads` uses every core; "
              "the others use one."]
    publish("decode", {f"decode.{k}_events_per_s": (round(v), "events/s")
                       for k, v in figs.items()} | {
        "decode.event_bytes": (round(size), "bytes"),
        "decode.native_vs_orjson_gather": (round(figs["native"] / og, 2), "x"),
        "decode.native_vs_arrow_read_json": (round(figs["native"] / base, 2), "x"),
        "decode.buffer_us_per_batch": (round(buf_us), "us")},
            "\n".join(lines))


def _avro(cats, batches):
    """A decoder for the Avro form of the events, and each batch in that form (by id)."""
    import io

    import fastavro

    from monitor.stage1.schema_registry import SchemaRegistry

    schema = fastavro.parse_schema({"type": "record", "name": "Event", "fields": (
        [{"name": "event_id", "type": "string"}, {"name": "ts", "type": "long"},
         {"name": "model_version", "type": "string"}]
        + [{"name": n, "type": "double"} for n in NUMERIC + ["score"]]
        + [{"name": n, "type": "string"} for n in list(CATEGORICAL) + ["age_band"]]
        + [{"name": n, "type": "int"} for n in ("approved", "defaulted")])})
    from dataclasses import replace

    cfg = config()
    cfg = replace(cfg, stream=replace(cfg.stream, format="avro",
                                      schema_registry_url="http://unused"))
    dec = Decoder(cfg, cats, GROUPS[0], known_fields=KNOWN)
    dec._registry = SchemaRegistry("http://unused")
    dec._registry._cache[1] = schema  # a warm cache: ids are fetched once per process
    out = {}
    for b in batches:
        wire = []
        for m in b:
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, schema, orjson.loads(m))
            wire.append(b"\x00\x00\x00\x00\x01" + buf.getvalue())
        out[id(b)] = wire
    b0 = batches[0]
    z = (np.arange(len(b0)), np.zeros(len(b0), np.int64))
    a, j = dec.decode(out[id(b0)], *z), Decoder(config(), cats, GROUPS[0]).decode(b0, *z)
    assert not a.bad and a.batch.numeric.tolist() == j.batch.numeric.tolist()
    return dec, out


def _buffer_cost(nat, batches, repeats) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.process_time()
        for b in batches:
            nat._native.buffer(b)
        ts.append((time.process_time() - t0) / len(batches) * 1e6)
    return median(ts)


if __name__ == "__main__":
    main()
