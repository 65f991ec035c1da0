"""dead_letter.payload: what a dead-letter copy keeps, for every kind of bad message."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from monitor.config import DeadLetterConfig, from_dict
from monitor.errors import ConfigError
from monitor.stage1.dead_letter import dead_letter_copy, protect

PII = b"jane.doe@example.com"
BAD = [b"", b"{", b"\xff\xfe", b'{"email": "jane.doe@example.com", "ts": "x"',
       b'[1, "jane.doe@example.com"]', b'{"email": "jane.doe@example.com", "x": 1}', b"null"]
HEADERS = [("streamdrift.reason", b"malformed"),
           ("streamdrift.error", b"unexpected end near 'jane.doe@example.com'"),
           ("streamdrift.source", b"t:0:5")]


@pytest.mark.parametrize("value", BAD)
def test_hash_keeps_only_the_digest_and_drops_the_error_text(value):
    v, k, h = dead_letter_copy(DeadLetterConfig(payload="hash"), value, b"cust-42", HEADERS)
    assert v == b"sha256:" + hashlib.sha256(value).hexdigest().encode()
    assert k == b"sha256:" + hashlib.sha256(b"cust-42").hexdigest().encode()
    assert PII not in repr(h).encode() and b"cust-42" not in repr(h).encode()
    assert dict(h)["streamdrift.payload"] == b"hash"
    assert dict(h)["streamdrift.reason"] == b"malformed"
    assert dict(h)["streamdrift.size"] == str(len(value)).encode()


@pytest.mark.parametrize("value", BAD)
def test_drop_keeps_nothing_but_the_reason_and_position(value):
    v, k, h = dead_letter_copy(DeadLetterConfig(payload="drop"), value, b"cust-42", HEADERS)
    assert v is None and k is None and PII not in repr(h).encode()
    assert dict(h)["streamdrift.source"] == b"t:0:5"


@pytest.mark.parametrize("value", BAD)
def test_raw_with_drop_fields_never_lets_a_dropped_field_through(value):
    cfg = DeadLetterConfig(payload="raw", drop_fields=("email",))
    v, k, h = dead_letter_copy(cfg, value, b"k", HEADERS)
    assert PII not in (v or b"")
    doc = None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    if isinstance(doc, dict):  # an object: cleaned field by field, the rest kept
        assert orjson.loads(v) == {k2: x for k2, x in doc.items() if k2 != "email"}
        assert dict(h)["streamdrift.payload"] in (b"raw", b"raw-dropped-fields")
    else:  # not an object: cannot be cleaned, so only its hash is kept
        assert v == b"sha256:" + hashlib.sha256(value).hexdigest().encode()
        assert dict(h)["streamdrift.payload"] == b"hash-unparseable"
        assert PII not in repr(h).encode()


def test_raw_without_drop_fields_is_the_message_as_it_came():
    v, k, h = dead_letter_copy(DeadLetterConfig(), BAD[3], b"k", HEADERS)
    assert (v, k) == (BAD[3], b"k") and dict(h)["streamdrift.payload"] == b"raw"
    assert protect(None, None, "", "raw", ("a",)) == (None, None, "", "raw")


def test_config_section_and_its_errors():
    base = {"monitor": "m", "kafka": {"bootstrap": "k:9092"}, "stream": {"topic": "t"},
            "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
            "reference": {"profile": "/r"}}
    cfg = from_dict({**base, "dead_letter": {"payload": "hash", "drop_fields": ["email"],
                                             "retention": "3d"}}, env={})
    assert cfg.dead_letter == DeadLetterConfig("hash", ("email",), 3 * 86_400_000)
    with pytest.raises(ConfigError) as e:
        from_dict({**base, "dead_letter": {"payload": "encrypt"}}, env={})
    assert e.value.path == "dead_letter.payload"
    with pytest.raises(ConfigError) as e:
        from_dict({**base, "topics": {"retention": {"triggers": "1h"}}}, env={})
    assert e.value.path == "topics.retention.triggers"  # shorter than the trigger cooldown
