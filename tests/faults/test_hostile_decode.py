"""Hostile input is a bad message or a decoded event, never an exception (issue 11 finding 2).

Every kind in monitor/dev/hostile.py is decoded alone between two good events and must end
as its kind promises: dead-lettered with its reason, or decoded as the good event it carries.
A mutation fuzzer (Hypothesis) then flips, cuts and splices those messages: decode returns,
and every message is either in the batch or bad with a known reason, exactly once.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import from_dict
from monitor.dev.hostile import BAD_KINDS, KINDS, expected_reasons, hostile
from monitor.stage1.decode import REASONS, UNDECODABLE, Decoder
from monitor.stage1.schema_names import MAX_NAMES, OTHER

CATS = {"region": ["north", "south"], "channel": ["web", "app"]}
GROUPS = ["18-25", "26-35"]
TEMPLATE = {"ts": 1_767_225_600_000, "x": 1.25, "y": -3e-5, "region": "south", "channel": "app",
            "score": 0.75, "approved": 1, "defaulted": 0, "age_band": "26-35", "id": "ev-1"}


def _decoder(sample_every: int = 1) -> Decoder:
    cfg = from_dict({
        "monitor": "t", "kafka": {"bootstrap": "k:9092"},
        "stream": {"topic": "t", "event_time": {"field": "ts", "unit": "ms"},
                   "event_id_field": "id"},
        "features": {"numeric": ["x", "y"], "categorical": ["region", "channel"]},
        "prediction": {"score": "score", "class": "approved", "label": "defaulted"},
        "sensitive": {"attribute": "age_band"},
        "windows": {"size": "1m"}, "reference": {"profile": "/r"}}, env={})
    return Decoder(cfg, CATS, GROUPS, sample_every=sample_every)


def _decode(d: Decoder, values: list):
    n = len(values)
    return d.decode(values, np.arange(n, dtype=np.int64), np.full(n, 5, np.int64))


def _columns(b) -> dict:
    return {k: getattr(b, k).tolist() for k in (
        "numeric", "numeric_state", "categorical", "unseen_hash", "score", "prediction",
        "label", "group", "event_time_ms", "event_id_hash")}


GOOD = orjson.dumps(TEMPLATE)


def test_there_are_at_least_fifteen_kinds_of_bad_message():
    assert len(BAD_KINDS) >= 15 and len({k.name for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_each_hostile_kind_ends_as_promised(kind):
    d = _decoder()
    (name, msg), = hostile(1, TEMPLATE, kinds=(kind,), seed=3)
    out = _decode(d, [GOOD, msg, GOOD])
    if kind.reason is None:
        assert out.bad == []
        want = _decode(_decoder(), [GOOD, GOOD, GOOD]).batch
        assert _columns(out.batch) == _columns(want)
    else:
        assert [(b.index, b.reason) for b in out.bad] == [(1, kind.reason)]
        assert out.bad[0].error
        assert out.batch.offset.tolist() == [0, 2]
        assert _columns(out.batch) == _columns(_decode(_decoder(), [GOOD, GOOD]).batch)


def test_a_mixed_hostile_batch_counts_exactly_by_reason():
    msgs = hostile(2000, TEMPLATE, seed=4, big=4096)
    d = _decoder()
    out = _decode(d, [m for _, m in msgs])
    assert out.bad_counts == dict(expected_reasons(msgs))
    assert out.batch.n_events == sum(1 for k, _ in msgs if _kind(k).reason is None)
    assert UNDECODABLE not in out.bad_counts


def test_new_field_names_are_bounded_whatever_the_input():
    d = _decoder(sample_every=1)
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    for _ in range(10):  # 10 batches of 3,000 events, 40 random new names each
        msgs = [orjson.dumps({**TEMPLATE, **{f"f{x}": 1 for x in rng.integers(0, 2**40, 40)}})
                for _ in range(3000)]
        out = _decode(d, msgs)
        seen.update(out.unexpected_fields)
        assert out.sampled == 3000
    assert len(seen) <= MAX_NAMES + 1 and OTHER in seen


def _kind(name):
    return next(k for k in KINDS if k.name == name)


# -- the fuzzer -------------------------------------------------------------------------------
SEEDS = [m for _, m in hostile(len(KINDS), TEMPLATE, seed=5, big=3000) if m is not None] + [GOOD]


@st.composite
def mutated(draw) -> bytes | None:
    v = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "splice", "delete"]))
        i = draw(st.integers(0, max(0, len(v) - 1)))
        if op == "flip" and v:
            v[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del v[i:]
        elif op == "insert":
            v[i:i] = draw(st.sampled_from([b"NaN", b"-0", b"1e400", b"[", b"{", b'"', b"\\",
                                           b"\\ud800", b"\xff", b"\xef\xbb\xbf", b",", b":",
                                           b"9" * 400, b" ", b"null", b"\x00", b'"ts":']))
        elif op == "splice":
            other = draw(st.sampled_from(SEEDS))
            j = draw(st.integers(0, len(other)))
            v[i:] = other[j:]
        elif op == "delete" and v:
            del v[i:i + draw(st.integers(1, 8))]
    return bytes(v)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(mutated(), st.none()), min_size=1, max_size=12),
       st.sampled_from([1, 2, 64]))
def test_fuzz_decode_returns_and_every_message_is_good_or_bad_with_a_reason(values, every):
    out = _decode(_decoder(sample_every=every), values)
    bad = [b.index for b in out.bad]
    assert len(set(bad)) == len(bad)
    assert sorted(bad + out.batch.offset.tolist()) == list(range(len(values)))
    assert all(b.reason in REASONS and b.reason != UNDECODABLE and b.error for b in out.bad)
    assert out.batch.n_events == len(values) - len(bad)


def test_the_last_guard_dead_letters_a_message_that_breaks_the_decoder():
    """An unknown failure (simulated: the row builder raises on one value) costs that one
    message, reason ``undecodable``; the batch around it is decoded."""
    d = _decoder()
    real = d._row

    def row(obj):
        if obj.get("x") == 13:
            raise RuntimeError("a decoder bug")
        return real(obj)

    d._row = row
    msgs = [GOOD, b'{"ts": 1000, "x": 13, "y": NaN}', b'{"ts": 1000, "x": 2, "y": NaN}', GOOD]
    out = _decode(d, msgs)
    assert [(b.index, b.reason) for b in out.bad] == [(1, UNDECODABLE)]
    assert "a decoder bug" in out.bad[0].error
    assert out.batch.offset.tolist() == [0, 2, 3]
