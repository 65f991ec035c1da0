"""Decode: exact counts for every bad reason and field error, categorical codes, the fast path
equal to the fallback, Avro over a local schema registry, Arrow tables."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import fastavro
import numpy as np
import orjson
import pyarrow as pa
import pytest

from kernels.batch import (CAT_MISSING, CAT_NULL, CAT_TYPE_ERROR, CAT_UNSEEN, MISSING, NULL,
                           TYPE_ERROR, VALID)
from monitor.config import from_dict
from monitor.stage1.decode import Decoder, category_hash, from_arrow
from monitor.errors import DecodeError, SchemaRegistryError
from monitor.dev.synthetic import CATEGORICAL, GROUPS, NUMERIC, Scenario, generate, to_json

CATS = {"region": ["north", "south"], "channel": ["web", "app"]}
GROUP_LIST = ["18-25", "26-35"]


def _cfg_dict(**stream) -> dict:
    st = {"topic": "t", "event_time": {"field": "ts", "unit": "ms"}, "event_id_field": "id",
          **stream}
    return {
        "monitor": "t", "kafka": {"bootstrap": "k:9092"},
        "stream": {k: v for k, v in st.items() if v is not None},
        "features": {"numeric": ["x", "y"], "categorical": ["region", "channel"]},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted"},
        "sensitive": {"attribute": "age_band"},
        "windows": {"size": "1m"}, "reference": {"profile": "/r"}}


def make_cfg(**stream):
    return from_dict(_cfg_dict(**stream), env={})


def ev(**kw) -> bytes:
    base = {"ts": 1000, "x": 1.0, "y": 2.0, "region": "north", "channel": "web",
            "score": 0.5, "approved": 1, "defaulted": 0, "age_band": "18-25", "id": "e"}
    base.update(kw)
    return orjson.dumps({k: v for k, v in base.items() if v is not DROP})


DROP = object()


def run(msgs, cfg=None, ts=None):
    d = Decoder(cfg or make_cfg(), CATS, GROUP_LIST)
    n = len(msgs)
    return d.decode(msgs, np.arange(100, 100 + n), np.zeros(n, np.int64) if ts is None else ts)


def test_good_batch_takes_fast_path():
    out = run([ev(), ev(x=3, region="south", channel="app", age_band="26-35", approved=0,
                     defaulted=1)])
    b = out.batch
    assert not out.fallback and out.bad == []
    assert b.numeric.tolist() == [[1.0, 3.0], [2.0, 2.0]]
    assert b.numeric.flags.c_contiguous and b.numeric.dtype == np.float64
    assert b.numeric_state.tolist() == [[0, 0], [0, 0]]
    assert b.categorical.tolist() == [[0, 1], [0, 1]] and b.categorical.dtype == np.int32
    assert b.unseen_hash.tolist() == [[0, 0], [0, 0]] and b.unseen_hash.dtype == np.uint64
    assert b.prediction.tolist() == [1, 0] and b.label.tolist() == [0, 1]
    assert b.group.tolist() == [0, 1] and b.group.dtype == np.int32
    assert b.event_time_ms.tolist() == [1000, 1000] and b.offset.tolist() == [100, 101]
    assert all(v == {"missing": 0, "null": 0, "type_error": 0} for v in out.field_errors.values())


BAD = [
    (b"\xff\xfe garbage", "malformed"),
    (b'{"ts": 1000, "x": 1', "malformed"),  # truncated
    (b"[1, 2, 3]", "malformed"),
    (b'"just a string"', "malformed"),
    (b"42", "malformed"),
    (b"null", "malformed"),
    (b"", "malformed"),
    (b"   ", "malformed"),
    (None, "malformed"),
    (b'{"a": 1} {"b": 2}', "malformed"),
    (ev(ts=DROP), "missing_event_time"),
    (ev(ts=None), "missing_event_time"),
    (ev(ts="yesterday"), "bad_event_time"),
    (ev(ts=True), "bad_event_time"),
    (ev(ts=-5), "bad_event_time"),
    (ev(ts={"ms": 1}), "bad_event_time"),
    (b'{"ts": NaN, "x": 1}', "bad_event_time"),
    (b'{"ts": 1e400, "x": 1}', "bad_event_time"),
]


@pytest.mark.parametrize("msg, reason", BAD, ids=[repr(m)[:40] for m, _ in BAD])
def test_each_bad_message_alone(msg, reason):
    out = run([ev(), msg, ev()])
    assert [(b.index, b.offset, b.reason) for b in out.bad] == [(1, 101, reason)]
    assert out.bad[0].error
    assert out.batch.offset.tolist() == [100, 102]


def test_fallback_keeps_the_good_prefix():
    out = run([ev(x=1), ev(x=2), b"oops", ev(x=4)])
    assert out.fallback and [b.index for b in out.bad] == [2]
    assert out.batch.numeric[0].tolist() == [1, 2, 4] and out.batch.offset.tolist() == [100, 101, 103]


def test_exact_counts_over_a_mixed_batch():
    msgs = [m for m, _ in BAD] + [ev()] * 5
    out = run(msgs)
    want = {"malformed": 10, "missing_event_time": 2, "bad_event_time": 6}
    assert out.bad_counts == want and out.fallback
    assert [b.index for b in out.bad] == list(range(len(BAD)))
    assert out.batch.n_events == 5


FIELD_CASES = [
    # message, field, expected numeric/categorical state or code
    (ev(x=DROP), "x", MISSING),
    (ev(x=None), "x", NULL),
    (ev(x="1.5"), "x", TYPE_ERROR),
    (ev(x=True), "x", TYPE_ERROR),
    (ev(x=[1]), "x", TYPE_ERROR),
    (ev(x={"v": 1}), "x", TYPE_ERROR),
    (ev(region=DROP), "region", CAT_MISSING),
    (ev(region=None), "region", CAT_NULL),
    (ev(region=3), "region", CAT_TYPE_ERROR),
    (ev(region=["north"]), "region", CAT_TYPE_ERROR),
    (ev(region="mars"), "region", CAT_UNSEEN),
]


@pytest.mark.parametrize("msg, fieldname, state", FIELD_CASES,
                         ids=[repr(m)[30:70] for m, _, _ in FIELD_CASES])
def test_field_errors_keep_the_event(msg, fieldname, state):
    out = run([ev(), msg])
    assert out.bad == [] and out.batch.n_events == 2
    if fieldname == "x":
        assert out.batch.numeric_state[0].tolist() == [VALID, state]
        assert out.batch.numeric[0, 0] == 1.0 and np.isnan(out.batch.numeric[0, 1])
    else:
        assert out.batch.categorical[0].tolist() == [0, state]
    key = {MISSING: "missing", NULL: "null", TYPE_ERROR: "type_error", CAT_MISSING: "missing",
           CAT_NULL: "null", CAT_TYPE_ERROR: "type_error"}.get(state)
    counts = out.field_errors[fieldname]
    assert counts == {"missing": 0, "null": 0, "type_error": 0} | ({key: 1} if key else {})


def test_nan_inf_and_huge_numbers_are_valid_values():
    msgs = [b'{"ts": 1, "x": NaN, "y": Infinity}', b'{"ts": 2, "x": -Infinity, "y": 1e400}',
            b'{"ts": 3, "x": 123456789012345678901234567890, "y": -0.0}',
            b'{"ts": 4, "x": 1' + b"0" * 400 + b', "y": 5}']
    out = run(msgs)
    assert out.bad == []
    x, y = out.batch.numeric
    assert np.isnan(x[0]) and x[1] == -np.inf and x[2] == 1.2345678901234568e29 and x[3] == np.inf
    assert y[0] == np.inf and y[1] == np.inf and y[2] == 0.0 and y[3] == 5.0
    assert (out.batch.numeric_state == VALID).all()  # non-finite values are values


def test_unseen_categories_get_stable_hashes():
    out = run([ev(region="mars"), ev(region="venus"), ev(region="mars"), ev()])
    assert out.batch.categorical[0].tolist() == [CAT_UNSEEN] * 3 + [0]
    h = out.batch.unseen_hash[0].tolist()
    assert h == [category_hash("mars"), category_hash("venus"), category_hash("mars"), 0]
    assert category_hash("mars") == 0x5D9F6A9C2DE1C0E6 or category_hash("mars") > 0


def test_category_hash_is_fixed():
    """The hash is part of the sketch format: it must never change between releases."""
    import hashlib
    want = int.from_bytes(hashlib.blake2b(b"mars", digest_size=8).digest(), "little")
    assert category_hash("mars") == want


def test_outcomes_and_groups():
    msgs = [ev(approved=True, defaulted=False), ev(approved="yes", defaulted=None),
            ev(approved=DROP, defaulted=[1]), ev(age_band="70+"), ev(age_band=None),
            ev(age_band=5), ev(score="high")]
    out = run(msgs)
    b = out.batch
    assert b.prediction.tolist() == [1, 0, -1, 1, 1, 1, 1]
    assert b.label.tolist() == [0, -1, -1, 0, 0, 0, 0]
    assert b.group.tolist() == [0, 0, 0, CAT_UNSEEN, -1, -1, 0]
    assert np.isnan(b.score[6]) and b.score[0] == 0.5
    assert out.field_errors["approved"] == {"missing": 1, "null": 0, "type_error": 0}
    assert out.field_errors["defaulted"] == {"missing": 0, "null": 1, "type_error": 1}
    assert out.field_errors["age_band"] == {"missing": 0, "null": 1, "type_error": 1}
    assert out.field_errors["score"] == {"missing": 0, "null": 0, "type_error": 1}


def test_threshold_gives_prediction_when_no_class_field():
    cfg = from_dict({"monitor": "t", "kafka": {"bootstrap": "k:1"}, "stream": {"topic": "t"},
                     "prediction": {"score": "score", "threshold": 0.5},
                     "windows": {"size": "1m"}, "reference": {"profile": "/r"}}, env={})
    out = Decoder(cfg, {}, []).decode([b'{"score": 0.7}', b'{"score": 0.2}', b"{}"],
                                      np.arange(3), np.array([5, 6, 7]))
    assert out.batch.prediction.tolist() == [1, 0, -1]
    assert out.batch.event_time_ms.tolist() == [5, 6, 7]  # Kafka timestamps


def test_kafka_timestamp_missing():
    cfg = from_dict({"monitor": "t", "kafka": {"bootstrap": "k:1"}, "stream": {"topic": "t"},
                     "features": {"numeric": ["x"]},
                     "windows": {"size": "1m"}, "reference": {"profile": "/r"}}, env={})
    out = Decoder(cfg, {}, []).decode([b'{"x": 1}', b'{"x": 2}'], np.arange(2),
                                      np.array([-1, 9]))
    assert out.bad_counts == {"missing_event_time": 1} and out.batch.event_time_ms.tolist() == [9]


@pytest.mark.parametrize("unit, value, want", [
    ("ms", 1767225600123, 1767225600123),
    ("ms", 1767225600123.0, 1767225600123),
    ("s", 1767225600, 1767225600000),
    ("s", 1767225600.5, 1767225600500),
    ("iso8601", "2026-01-01T00:00:00Z", 1767225600000),
    ("iso8601", "2026-01-01T02:00:00.250+02:00", 1767225600250),
    ("iso8601", "2026-01-01T00:00:00.123456Z", 1767225600123),
    ("iso8601", "2026-01-01T00:00:00", 1767225600000),  # no zone: UTC
])
def test_event_time_units(unit, value, want):
    cfg = make_cfg(event_time={"field": "ts", "unit": unit})
    for batch in ([ev(ts=value)], [ev(ts=value), ev(ts=value)]):
        out = run(batch, cfg)
        assert out.bad == [] and out.batch.event_time_ms.tolist() == [want] * len(batch)


def test_iso_event_time_bad_and_mixed():
    cfg = make_cfg(event_time={"field": "ts", "unit": "iso8601"})
    out = run([ev(ts="2026-01-01T00:00:00Z"), ev(ts="not a time"), ev(ts=1767225600000),
               ev(ts=None), ev(ts="2026-01-01 00:00:00.5+00:00")], cfg)
    assert out.bad_counts == {"bad_event_time": 2, "missing_event_time": 1}
    assert out.batch.event_time_ms.tolist() == [1767225600000, 1767225600500]


def test_fast_path_equals_fallback_on_the_same_good_data():
    cols = generate(Scenario(n_events=3000, seed=7))
    msgs = to_json(cols)
    cfg = from_dict({
        "monitor": "t", "kafka": {"bootstrap": "k:1"},
        "stream": {"topic": "t", "event_time": {"field": "ts"}, "event_id_field": "event_id"},
        "features": {"numeric": NUMERIC, "categorical": list(CATEGORICAL)},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted",
                       "positive_label": 0},
        "sensitive": {"attribute": "age_band"},
        "windows": {"size": "1m"}, "reference": {"profile": "/r"}}, env={})
    cats = {k: v[0][:-1] for k, v in CATEGORICAL.items()}  # leave one value unseen
    d = Decoder(cfg, cats, GROUPS[0][:-1])
    off, ts = np.arange(3000), np.zeros(3000, np.int64)
    fast = d.decode(msgs, off, ts)
    # garbage first: every message after it goes through the per-message classification
    slow = d.decode([b"garbage"] + msgs, np.arange(-1, 3000), np.zeros(3001, np.int64))
    assert not fast.fallback and slow.fallback and slow.bad_counts == {"malformed": 1}
    for name in ("numeric", "numeric_state", "categorical", "unseen_hash", "score",
                 "prediction", "label", "group", "event_time_ms", "offset"):
        a, b = getattr(fast.batch, name), getattr(slow.batch, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
    assert fast.field_errors == slow.field_errors
    # and both equal the generator's own columns
    assert np.array_equal(fast.batch.numeric[0], cols[NUMERIC[0]])
    assert np.array_equal(fast.batch.event_time_ms, cols["ts"])
    region = np.array(CATEGORICAL["region"][0], dtype=object)
    assert (region[fast.batch.categorical[0][fast.batch.categorical[0] >= 0]] ==
            cols["region"][fast.batch.categorical[0] >= 0]).all()
    assert np.array_equal(fast.batch.label, (cols["defaulted"] == 0).astype(np.int8))
    assert fast.unexpected_fields == {"model_version": fast.sampled}


def test_fast_path_equals_fallback_with_nulls_and_missing():
    msgs = [ev(x=None), ev(x=DROP), ev(region=None), ev(region=DROP), ev(approved=None),
            ev(region="mars"), ev(ts=1500.0)]
    fast = run(msgs)
    slow = run([b"!"] + msgs)
    assert not fast.fallback and slow.fallback
    assert np.array_equal(fast.batch.numeric, slow.batch.numeric, equal_nan=True)
    assert slow.batch.offset.tolist() == (fast.batch.offset + 1).tolist()
    for name in ("numeric_state", "categorical", "unseen_hash", "prediction", "event_time_ms"):
        assert np.array_equal(getattr(fast.batch, name), getattr(slow.batch, name)), name
    assert fast.field_errors == slow.field_errors
    assert fast.field_errors["x"] == {"missing": 1, "null": 1, "type_error": 0}


def test_schema_change_detection():
    """Messages at offsets divisible by 64 are parsed in full: offsets 100..299 hold three."""
    msgs = [orjson.dumps({"ts": 1, "x": 1.0, "new_field": 1, "id": "a"})] * 200
    out = run(msgs)
    assert out.samples == [(28, 128, ("new_field",)), (92, 192, ("new_field",)),
                           (156, 256, ("new_field",))]
    assert out.unexpected_fields == {"new_field": 3} and out.sampled == 3
    assert set(out.absent_fields) == {"y", "region", "channel", "score", "approved",
                                      "defaulted", "age_band"}
    # the same samples on the slow path, and known fields are not new
    slow = run([b"!"] + msgs[1:])
    assert slow.fallback and slow.samples == out.samples
    d = Decoder(make_cfg(known_fields=["new_field"]), CATS, GROUP_LIST)
    known = d.decode(msgs, np.arange(100, 300), np.zeros(200, np.int64))
    assert [names for _, _, names in known.samples] == [(), (), ()]


def test_event_ids_hash_the_same_on_both_paths_and_integers_work():
    msgs = [ev(id="a"), ev(id="b"), ev(id="a"), ev(id=7), ev(id=DROP), ev(id=None),
            ev(id=[1])]
    fast = run(msgs[:3])
    slow = run(msgs)
    h = slow.batch.event_id_hash
    assert slow.fallback and not fast.fallback
    assert fast.batch.event_id_hash.tolist() == h[:3].tolist()
    assert h[0] == h[2] and h[0] != h[1] and h[3] not in (0, h[0], h[1])
    assert h[4:].tolist() == [0, 0, 0]  # absent, null, wrong type: no id
    assert run([ev(id="7")]).batch.event_id_hash[0] == h[3]  # 7 and "7" are one id
    assert run([ev()], make_cfg(event_id_field=None)).batch.event_id_hash is None


def test_ingest_times_only_when_freshness_is_judged():
    msgs = [ev(), ev()]
    assert run(msgs, ts=np.array([5, 6])).batch.ingest_time_ms is None
    d = _cfg_dict()
    d["checks"] = {"quality": {"max_event_delay": "1m"}}
    cfg = from_dict(d, env={})
    assert run(msgs, cfg, ts=np.array([5, 6])).batch.ingest_time_ms.tolist() == [5, 6]


def test_empty_batch():
    out = run([])
    assert out.batch.n_events == 0 and out.batch.numeric.shape == (2, 0) and out.bad == []


def test_profile_without_categories_is_refused():
    with pytest.raises(DecodeError, match="no category list"):
        Decoder(make_cfg(), {"region": ["north"]}, [])


# -- Arrow tables ----------------------------------------------------------------------

def test_from_arrow_matches_json_decode():
    msgs = [ev(), ev(x=None, region="mars"), ev(y=7, channel=None, approved=0),
            ev(ts=None), ev(age_band="26-35")]
    table = pa.table({
        "ts": [1000, 1000, 1000, None, 1000], "x": [1.0, None, 1.0, 1.0, 1.0],
        "y": [2, 2, 7, 2, 2], "region": ["north", "mars", "north", "north", "north"],
        "channel": pa.array(["web", "web", None, "web", "web"]).dictionary_encode(),
        "score": [0.5] * 5, "approved": [1, 1, 0, 1, 1], "defaulted": [0] * 5,
        "age_band": ["18-25", "18-25", "18-25", "18-25", "26-35"], "extra": [1] * 5})
    cfg = make_cfg()
    json_out = run(msgs, cfg)
    d = Decoder(cfg, CATS, GROUP_LIST).decode_table(table, first_offset=100)
    for name in ("numeric", "numeric_state", "categorical", "unseen_hash", "prediction",
                 "label", "group", "event_time_ms", "offset"):
        assert np.array_equal(getattr(d.batch, name), getattr(json_out.batch, name),
                              equal_nan=True), name
    assert d.field_errors == json_out.field_errors
    assert d.bad_counts == {"missing_event_time": 1}
    # table columns nobody reads are new fields of every sampled row (offset % 64 == 0)
    wide = Decoder(cfg, CATS, GROUP_LIST).decode_table(table, first_offset=126)
    assert wide.samples == [(2, 128, ("extra",))] and wide.unexpected_fields == {"extra": 1}
    b = from_arrow(table, cfg, CATS, GROUP_LIST, first_offset=100)
    assert b.offset.tolist() == [100, 101, 102, 104]


def test_from_arrow_csv_types():
    """CSV inference: a numeric column with a stray word is text; timestamps are typed."""
    import pyarrow.csv as pcsv
    text = (b"ts,x,y,region,channel,score,approved,defaulted,age_band\n"
            b"2026-01-01T00:00:00Z,1.5,oops,north,web,0.1,1,0,18-25\n"
            b"2026-01-01T00:00:01Z,,3,7,app,0.2,0,1,26-35\n")
    table = pcsv.read_csv(io.BytesIO(text))
    cfg = make_cfg(event_time={"field": "ts", "unit": "iso8601"})
    d = Decoder(cfg, CATS, GROUP_LIST).decode_table(table)
    b = d.batch
    assert d.bad == [] and b.event_time_ms.tolist() == [1767225600000, 1767225601000]
    assert b.numeric_state.tolist() == [[VALID, NULL], [TYPE_ERROR, VALID]]
    assert b.numeric[1, 1] == 3.0
    assert b.categorical[0].tolist() == [0, CAT_UNSEEN]  # "7" read as int, compared as text


# -- Avro ------------------------------------------------------------------------------

AVRO_SCHEMA = {
    "type": "record", "name": "LoanEvent", "fields": [
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "x", "type": ["null", "double"]}, {"name": "y", "type": "double"},
        {"name": "region", "type": ["null", "string"]},
        {"name": "channel", "type": {"type": "enum", "name": "Ch", "symbols": ["web", "app"]}},
        {"name": "score", "type": "double"}, {"name": "approved", "type": "int"},
        {"name": "defaulted", "type": "boolean"}, {"name": "age_band", "type": "string"}]}


@pytest.fixture
def registry():
    hits = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            if self.path == "/schemas/ids/7":
                body = json.dumps({"schema": json.dumps(AVRO_SCHEMA)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(404)
                self.end_headers()
                self.wfile.write(b'{"error_code": 40403, "message": "Schema not found"}')

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_port}", hits
    srv.shutdown()
    srv.server_close()
    th.join(5)


def wire(schema_id: int, rec: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(AVRO_SCHEMA), rec)
    return b"\x00" + schema_id.to_bytes(4, "big") + buf.getvalue()


def test_avro_round_trip(registry):
    url, hits = registry
    cfg = make_cfg(format="avro", schema_registry_url=url)
    import datetime as dt
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    recs = [dict(ts=t0, x=1.5, y=2.0, region="north", channel="app", score=0.25, approved=1,
                 defaulted=False, age_band="26-35"),
            dict(ts=t0, x=None, y=3.0, region="mars", channel="web", score=0.75, approved=0,
                 defaulted=True, age_band="99+")]
    msgs = [wire(7, r) for r in recs] + [wire(8, recs[0]), b"\x01junk", None,
                                         wire(7, recs[0])[:9]]
    d = Decoder(cfg, CATS, GROUP_LIST)
    out = d.decode(msgs, np.arange(6), np.zeros(6, np.int64))
    b = out.batch
    assert b.event_time_ms.tolist() == [1767225600000] * 2
    assert b.numeric.tolist()[1] == [2.0, 3.0] and b.numeric[0, 0] == 1.5
    assert b.numeric_state[0].tolist() == [VALID, NULL]
    assert b.categorical.tolist() == [[0, CAT_UNSEEN], [1, 0]]
    assert b.prediction.tolist() == [1, 0] and b.label.tolist() == [0, 1]
    assert b.group.tolist() == [1, CAT_UNSEEN]
    assert [(x.index, x.reason) for x in out.bad] == [(2, "malformed"), (3, "malformed"),
                                                     (4, "malformed"), (5, "malformed")]
    assert "unknown to the registry" in out.bad[0].error
    d.decode(msgs[:2], np.arange(2), np.zeros(2, np.int64))
    assert hits.count("/schemas/ids/7") == 1 and hits.count("/schemas/ids/8") == 1  # cached


def test_avro_registry_down_raises():
    cfg = make_cfg(format="avro", schema_registry_url="http://127.0.0.1:9")
    d = Decoder(cfg, CATS, GROUP_LIST)
    msg = wire(7, dict(ts=0, x=1.0, y=2.0, region="north", channel="app", score=0.25,
                       approved=1, defaulted=False, age_band="26-35"))
    with pytest.raises(SchemaRegistryError, match="after 3 attempts"):
        d.decode([msg], np.arange(1), np.zeros(1, np.int64))


def test_field_names_that_are_not_python_identifiers():
    cfg = from_dict({"monitor": "t", "kafka": {"bootstrap": "k:1"},
                     "stream": {"topic": "t", "event_time": {"field": "@timestamp"}},
                     "features": {"numeric": ["debt-ratio", "x"], "categorical": ["for"]},
                     "prediction": {"class": "class"},
                     "windows": {"size": "1m"}, "reference": {"profile": "/r"}}, env={})
    msgs = [b'{"@timestamp": 5, "debt-ratio": 0.5, "x": 1, "for": "a", "class": 1}',
            b'{"@timestamp": 6, "debt-ratio": null, "for": "b", "class": 0}']
    for batch in (msgs, [b"!"] + msgs):
        out = Decoder(cfg, {"for": ["a"]}, []).decode(batch, np.arange(len(batch)),
                                                     np.zeros(len(batch), np.int64))
        b = out.batch
        assert b.numeric_state.tolist() == [[VALID, NULL], [VALID, MISSING]]
        assert b.categorical.tolist() == [[0, CAT_UNSEEN]] and b.prediction.tolist() == [1, 0]
        assert b.event_time_ms.tolist() == [5, 6]
