"""The scanner's word-at-a-time parts and its key lookups, against plain references.

- ``first_special`` / ``same_bytes`` (kernels/byte_words.py) equal a byte-by-byte loop on
  any bytes, at any position (the buffer carries its zero padding, as the scanner's does);
- a buffer without the padding is scanned as one with it (``scan`` pads a copy);
- schema samples: messages whose keys are all configured or known are not read again
  (``Scan.unknown``), and the samples equal the general decoder's, with known fields the
  decoder does not read, unknown ones, and both (the differential helper of
  tests/test_decode_native.py, with ``known_fields``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels.byte_words import PAD, first_special, same_bytes
from kernels.json_scan import FieldTable, scan
from monitor.stage1.decode import Decoder
from tests.test_decode_native import CATS, GROUPS, _bits, _cfg, message

SPECIAL = set(range(32)) | {34, 92} | set(range(128, 256))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.data())
def test_first_special_equals_a_byte_loop(raw, data):
    buf = np.frombuffer(raw + bytes(PAD), np.uint8)
    p = data.draw(st.integers(0, len(raw)))
    want = next(q for q in range(p, buf.size) if buf[q] in SPECIAL)
    assert first_special(buf, p) == want


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.data())
def test_same_bytes_equals_slice_comparison(raw, data):
    raw = raw + raw[: data.draw(st.integers(0, len(raw)))]
    buf = np.frombuffer(raw + bytes(PAD), np.uint8)
    p = data.draw(st.integers(0, len(raw)))
    q = data.draw(st.integers(0, len(raw)))
    n = data.draw(st.integers(0, len(raw) - max(p, q)))
    assert same_bytes(buf, p, q, n) == (raw[p:p + n] == raw[q:q + n])


def test_a_buffer_without_padding_is_scanned_like_a_padded_one():
    msgs = [b'{"a": "plain", "b": 1.5}', b'{"b": 2, "a": "x"}']
    starts = np.cumsum([0] + [len(m) for m in msgs])
    table = FieldTable([b"a", b"b"], known=(b"c",))
    bare = scan(np.frombuffer(b"".join(msgs) + b"trailingtext", np.uint8), starts,
                np.zeros(2, np.bool_), table)
    pad = scan(np.frombuffer(b"".join(msgs) + bytes(PAD), np.uint8), starts,
               np.zeros(2, np.bool_), table)
    for k in ("tok", "num", "a", "b", "fallback", "unknown"):
        assert getattr(bare, k).tolist() == getattr(pad, k).tolist(), k
    assert bare.tok.tolist() == [[3, 3], [2, 1]] and not bare.fallback.any()


def test_unknown_marks_a_key_neither_configured_nor_known():
    msgs = [b'{"a": 1, "c": 2}', b'{"a": 1, "d": 2}', b'{"d": 1, "a": 2}', b'{"a": 1}']
    starts = np.cumsum([0] + [len(m) for m in msgs])
    out = scan(np.frombuffer(b"".join(msgs), np.uint8), starts, np.zeros(4, np.bool_),
               FieldTable([b"a"], known=(b"c", b"a")))
    assert out.unknown.tolist() == [False, True, True, False]
    assert out.tok.tolist() == [[1, 1, 1, 1]] and out.num.tolist() == [[1.0, 1.0, 2.0, 1.0]]


def _assert_same_with_known(values: list, known: tuple[str, ...]):
    cfg = _cfg()
    native = Decoder(cfg, CATS, GROUPS, known_fields=known, sample_every=1)
    general = Decoder(cfg, CATS, GROUPS, known_fields=known, sample_every=1, native=False)
    n = len(values)
    args = (np.arange(n, dtype=np.int64), np.zeros(n, np.int64))
    a, b = native.decode(values, *args), general.decode(values, *args)
    assert a.samples == b.samples
    assert _bits(a.batch.numeric) == _bits(b.batch.numeric)
    assert [(e.index, e.reason) for e in a.bad] == [(e.index, e.reason) for e in b.bad]
    return a


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message(), min_size=1, max_size=8),
       st.sampled_from([(), ("note",), ("note", "extra"), ("extra", "zzz")]))
def test_samples_equal_the_general_decoders_with_known_fields(msgs, known):
    _assert_same_with_known(msgs, known)


def test_samples_name_only_the_unknown_keys():
    msgs = [b'{"ts": 5, "x": 1.0, "note": "n"}', b'{"ts": 5, "extra": 2, "note": 1}',
            b'{"ts": 5}']
    out = _assert_same_with_known(msgs, ("note",))
    assert [names for _, _, names in out.samples] == [(), ("extra",), ()]
    assert out.fallback_messages == 0
