"""The compiled JSON scanner against the general decoder: differential tests.

Every column, state, code, hash, bad-message record, field error count and schema sample of
``Decoder(native=True)`` must equal ``Decoder(native=False)`` (msgspec, orjson, the standard
library: the decoder as it was), floats bit for bit, on events drawn by Hypothesis (number
spellings of every kind, subnormals, -0, 17-digit mantissas, whitespace, key order, unicode,
escapes, duplicates, nesting, truncation), on mutations of them and on the hostile kinds.
And a number the scanner reads equals Python's ``float()`` of its text.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import from_dict
from monitor.dev.hostile import KINDS, hostile
from monitor.stage1.decode import Decoder

CATS = {"region": ["north", "south", "ünï"], "channel": ["web", "app"]}
GROUPS = ["18-25", "26-35"]
NUMERIC = ["x", "y"]


def _cfg(unit: str = "ms", positive=1, id_field: str = "id"):
    return from_dict({
        "monitor": "t", "kafka": {"bootstrap": "k:9092"},
        "stream": {"topic": "t", "event_time": {"field": "ts", "unit": unit},
                   "event_id_field": id_field},
        "features": {"numeric": NUMERIC, "categorical": ["region", "channel"]},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted",
                       "positive_class": positive},
        "sensitive": {"attribute": "age_band"},
        "windows": {"size": "1m"}, "reference": {"profile": "/r"}}, env={})


def _pair(cfg=None, every: int = 2):
    cfg = cfg or _cfg()
    return (Decoder(cfg, CATS, GROUPS, sample_every=every),
            Decoder(cfg, CATS, GROUPS, sample_every=every, native=False))


def _bits(a: np.ndarray):
    return a.view(np.uint64).tolist() if a.dtype == np.float64 else a.tolist()


def assert_same(values: list, cfg=None, every: int = 2) -> object:
    native, general = _pair(cfg, every)
    n = len(values)
    args = (np.arange(7, 7 + n, dtype=np.int64), np.arange(n, dtype=np.int64) * 1000)
    a, b = native.decode(values, *args), general.decode(values, *args)
    for k in ("numeric", "numeric_state", "categorical", "unseen_hash", "score", "prediction",
              "label", "group", "event_time_ms", "offset", "event_id_hash"):
        x, y = getattr(a.batch, k), getattr(b.batch, k)
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert _bits(x) == _bits(y), k
    assert [(e.index, e.offset, e.reason, e.error) for e in a.bad] == \
        [(e.index, e.offset, e.reason, e.error) for e in b.bad]
    assert a.field_errors == b.field_errors and a.absent_fields == b.absent_fields
    assert a.samples == b.samples
    return a


# -- number spellings --------------------------------------------------------------------------
def _spell(x: float, how: int) -> str:
    if how == 0:
        return repr(x)
    if how == 1:
        return f"{x:.17g}"
    if how == 2:
        return f"{x:.{abs(hash(x)) % 17}e}".replace("e+0", "E+").replace("e-0", "e-")
    if how == 3:
        return f"{x:.6f}"
    return str(int(x)) if math.isfinite(x) and abs(x) < 1e30 else repr(x)


finite = st.floats(allow_nan=False, allow_infinity=False)
number_text = st.one_of(
    st.builds(_spell, finite, st.integers(0, 4)),
    st.builds(lambda b: repr(struct.unpack("<d", struct.pack("<Q", b))[0]),
              st.integers(1, 2**52 - 1)),  # subnormals
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["-0", "0", "-0.0", "0.0", "0e0", "1E5", "1e+5", "-1.5e-7", "1e22", "1e23",
                     "9007199254740993", "18446744073709551616", "0.1", "2.2250738585072011e-308",
                     "4.9e-324", "1e-400", "123456789012345678901234567890", "1.7976931348623157e308",
                     "1e308", "00", "1.", ".5", "+1", "1e", "--1", "0x10", "1_0"]),
    st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
)
text = st.one_of(st.sampled_from(["north", "south", "ünï", "web", "app", "18-25", "mars", ""]),
                 st.text(max_size=12))


def _json_str(s: str, escape: bool) -> str:
    return orjson.dumps(s).decode() if not escape else json_escape_all(s)


def json_escape_all(s: str) -> str:
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in s) + '"'


value = st.one_of(number_text, st.builds(_json_str, text, st.booleans()),
                  st.sampled_from(["true", "false", "null", "[]", "{}", '[1, {"a": null}]',
                                   '{"v": 1.5}', "NaN", "Infinity", "-Infinity"]))
FIELDS = ["ts", "x", "y", "region", "channel", "score", "approved", "defaulted", "age_band",
          "id", "note", "extra"]


@st.composite
def message(draw) -> bytes:
    keys = draw(st.lists(st.sampled_from(FIELDS), max_size=14))
    if draw(st.booleans()):
        keys = ["ts"] + keys
    ws = draw(st.sampled_from(["", " ", "\n\t ", "  \r\n"]))
    parts = []
    for k in keys:
        v = (draw(st.sampled_from(["1767225600000", "1767225600000.5", "1.7672256e12", "-5"]))
             if k == "ts" and draw(st.booleans()) else draw(value))
        parts.append(f"{ws}{orjson.dumps(k).decode()}{ws}:{ws}{v}{ws}")
    raw = ("{" + ",".join(parts) + "}").encode()
    if draw(st.integers(0, 9)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message(), min_size=1, max_size=8))
def test_native_equals_general_on_drawn_events(msgs):
    assert_same(msgs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message(), min_size=1, max_size=6), st.sampled_from(["s", "iso8601"]),
       st.sampled_from([1, True, "yes", 0, False]))
def test_native_equals_general_with_other_units_and_positive_classes(msgs, unit, positive):
    if unit == "iso8601":
        msgs = [m.replace(b'"ts":', b'"ts": "2026-01-01T00:00:01Z", "t0":', 1) for m in msgs]
    assert_same(msgs, _cfg(unit=unit, positive=positive))


@st.composite
def mutated(draw) -> bytes | None:
    v = bytearray(draw(message()))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(0, len(v))))
        op = draw(st.integers(0, 3))
        if op == 0 and v:
            v[min(i, len(v) - 1)] = draw(st.integers(0, 255))
        elif op == 1:
            v[i:i] = draw(st.sampled_from([b",", b'"', b"\\", b"\\u00e9", b"-", b"e", b"0",
                                           b".", b"\xc3\xa9", b"\xff", b"{", b"]", b" "]))
        elif op == 2:
            del v[i:i + draw(st.integers(1, 4))]
        else:
            v[i:i] = v[: draw(st.integers(0, len(v)))]
    return bytes(v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(mutated(), st.none()), min_size=1, max_size=8))
def test_native_equals_general_on_mutations(msgs):
    assert_same(msgs)


def test_native_equals_general_on_every_hostile_kind():
    template = {"ts": 1_767_225_600_000, "x": 0.1, "y": -3e-5, "region": "south",
                "channel": "app", "score": 0.75, "approved": 1, "defaulted": 0,
                "age_band": "26-35", "id": 123}
    msgs = [m for _, m in hostile(3 * len(KINDS), template, seed=9, big=5000)]
    out = assert_same(msgs, every=1)
    assert out.fallback_messages > 0 and out.batch.n_events > 0


def test_synthetic_events_take_the_compiled_path_entirely():
    from monitor.dev.synthetic import Scenario, generate, to_json

    msgs = to_json(generate(Scenario(n_events=2000, seed=4)))
    cfg = from_dict({
        "monitor": "t", "kafka": {"bootstrap": "k:9092"},
        "stream": {"topic": "t", "event_time": {"field": "ts"}, "event_id_field": "event_id"},
        "features": {"numeric": ["income", "debt_ratio"], "categorical": ["region"]},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted"},
        "windows": {"size": "1m"}, "reference": {"profile": "/r"}}, env={})
    cats = {"region": ["north", "south", "east"]}
    a = Decoder(cfg, cats, []).decode(msgs, np.arange(2000), np.zeros(2000, np.int64))
    b = Decoder(cfg, cats, [], native=False).decode(msgs, np.arange(2000),
                                                    np.zeros(2000, np.int64))
    assert a.fallback_messages == 0 and not a.fallback and a.batch.n_events == 2000
    assert _bits(a.batch.numeric) == _bits(b.batch.numeric)
    assert a.batch.categorical.tolist() == b.batch.categorical.tolist()


@settings(max_examples=250, deadline=None)
@given(st.lists(number_text, min_size=1, max_size=20))
def test_a_number_the_scanner_reads_equals_python_float_of_its_text(texts):
    msgs = [f'{{"ts": 5, "x": {t}}}'.encode() for t in texts]
    out = Decoder(_cfg(), CATS, GROUPS).decode(msgs, np.arange(len(msgs)),
                                               np.zeros(len(msgs), np.int64))
    got = dict(zip(out.batch.offset.tolist(), out.batch.numeric[0].tolist()))
    for i, t in enumerate(texts):
        if i not in got or out.batch.numeric_state[0, out.batch.offset.tolist().index(i)]:
            continue  # not a JSON number: malformed or a type error (tested above)
        want = float(int(t)) if _is_int(t) else float(t)
        assert struct.pack("<d", got[i]) == struct.pack("<d", want), t


def _is_int(t: str) -> bool:
    return t.lstrip("-").isdigit()


@pytest.mark.parametrize("text", ["0.1", "2.2250738585072011e-308", "4.9e-324", "1e23",
                                  "9007199254740993", "0.30000000000000004",
                                  "1.7976931348623157e308", "-0.0", "123.456e-300"])
def test_hard_numbers_bit_for_bit(text):
    out = assert_same([f'{{"ts": 5, "x": {text}}}'.encode()])
    assert struct.pack("<d", out.batch.numeric[0, 0]) == struct.pack("<d", float(text))


def test_fallback_messages_are_counted_one_by_one():
    good = b'{"ts": 5, "x": 1.5, "region": "north"}'
    msgs = [good, b"garbage", b'{"ts": 5, "region": "nor\\u0074h"}', good, None,
            b'{"ts": 5, "x": 1, "x": 2}']
    out = assert_same(msgs)
    assert out.fallback_messages == 4 and out.fallback
    assert [b.index for b in out.bad] == [1, 4]
    assert out.batch.categorical[0].tolist() == [0, 0, 0, -1]  # the escaped "north" too
    assert assert_same([good, good]).fallback_messages == 0
