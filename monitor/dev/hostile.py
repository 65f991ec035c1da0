"""What a hostile or broken producer sends: malformed and odd messages of many kinds, each
with the outcome the decoder owes it. Shared by the decoder's tests, the fault suite and the
benchmarks.

Every :class:`Kind` is built from a good event (``template``, a dict holding the configured
event-time field ``time_field`` in ms and a read text field ``text_field``) and says what
the decoder must make of it: ``reason`` is the bad-message reason it is dead-lettered with,
or ``None`` for a message that must be decoded as the good event it carries (a BOM, duplicate
keys, a 5,000-digit number in a field nobody reads ...). ``heavy`` kinds weigh megabytes:
:func:`hostile` makes at most ``max_heavy`` of each.

>>> msgs = hostile(40, {"ts": 1000, "region": "north", "x": 1.5}, seed=1)
>>> len(msgs), len({k for k, _ in msgs}) >= 15
(40, True)
>>> sorted(expected_reasons(msgs))
['bad_event_time', 'malformed', 'missing_event_time']
>>> [k.name for k in KINDS if k.reason is None][:3]
['bom', 'duplicate_keys', 'nan_in_unused_field']
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np
import orjson

__all__ = ["Kind", "KINDS", "BAD_KINDS", "ODD_GOOD_KINDS", "hostile", "expected_reasons",
           "kind_of"]

MALFORMED, MISSING_EVENT_TIME, BAD_EVENT_TIME = "malformed", "missing_event_time", "bad_event_time"
UNUSED = "note"  # a field no config reads: hostile values hide there
_MARK = "@@hostile@@"
DEEP = 5000  # nesting depth: past every JSON parser's recursion limit
HUGE_DIGITS = 5000  # past Python's int-from-string limit (4,300 digits)


@dataclass(frozen=True)
class Kind:
    name: str
    reason: str | None  # None: decoded as the good event it carries
    make: Callable[["_Ctx"], bytes | None]
    heavy: bool = False


@dataclass
class _Ctx:
    template: dict
    time_field: str
    text_field: str
    rng: np.random.Generator
    big: int

    def with_raw(self, field: str, raw: bytes, base: dict | None = None) -> bytes:
        """The template with ``field`` set to raw bytes (any token, valid JSON or not)."""
        d = dict(self.template if base is None else base)
        d[field] = _MARK
        return orjson.dumps(d).replace(orjson.dumps(_MARK), raw, 1)

    def with_value(self, field: str, value) -> bytes:
        return orjson.dumps({**self.template, field: value})

    def without(self, field: str) -> bytes:
        return orjson.dumps({k: v for k, v in self.template.items() if k != field})


def _garbage(c: _Ctx) -> bytes:
    return b"\x00" + c.rng.integers(0, 256, int(c.rng.integers(1, 200)), np.uint8).tobytes()


def _truncated(c: _Ctx) -> bytes:
    good = orjson.dumps(c.template)
    return good[: int(c.rng.integers(1, len(good) - 1))]


def _deep(c: _Ctx) -> bytes:
    return c.with_raw(UNUSED, b"[" * DEEP + b"]" * DEEP)


def _huge_int(c: _Ctx) -> bytes:
    return b"9" + (c.rng.integers(0, 10, HUGE_DIGITS - 1) + 48).astype(np.uint8).tobytes()


def _dup_keys(c: _Ctx) -> bytes:  # the first copy is overridden by the template's own value
    good = orjson.dumps(c.template)
    return b"{" + orjson.dumps(c.text_field) + b':"decoy",' + good[1:]


def _many_fields(c: _Ctx) -> bytes:
    extra = {f"k{int(x):x}": 1 for x in c.rng.integers(0, 2**40, 40)}
    return orjson.dumps({**c.template, **extra})


def _pretty(c: _Ctx) -> bytes:
    return b" \n\t" + orjson.dumps(c.template, option=orjson.OPT_INDENT_2) + b"\r\n "


def _k(name, reason, make, heavy=False) -> Kind:
    return Kind(name, reason, make, heavy)


BAD_KINDS: tuple[Kind, ...] = (
    _k("garbage_bytes", MALFORMED, _garbage),
    _k("truncated", MALFORMED, _truncated),
    _k("empty", MALFORMED, lambda c: b""),
    _k("whitespace_only", MALFORMED, lambda c: b" \t\r\n "),
    _k("tombstone", MALFORMED, lambda c: None),
    _k("json_array", MALFORMED, lambda c: orjson.dumps([c.template])),
    _k("json_scalar", MALFORMED, lambda c: b'"an event"'),
    _k("two_objects", MALFORMED, lambda c: orjson.dumps(c.template) * 2),
    _k("invalid_utf8_in_read_field", MALFORMED,
       lambda c: c.with_raw(c.text_field, b'"\xff\xfe\xc0\x80"')),
    _k("unpaired_surrogate_in_read_field", MALFORMED,
       lambda c: c.with_raw(c.text_field, b'"north\\ud800"')),
    _k("deep_nesting", MALFORMED, _deep),
    _k("no_event_time", MISSING_EVENT_TIME, lambda c: c.without(c.time_field)),
    _k("null_event_time", MISSING_EVENT_TIME, lambda c: c.with_value(c.time_field, None)),
    _k("text_event_time", BAD_EVENT_TIME, lambda c: c.with_value(c.time_field, "yesterday")),
    _k("event_time_before_1970", BAD_EVENT_TIME,
       lambda c: c.with_value(c.time_field, -86_400_000)),
    _k("event_time_after_9999", BAD_EVENT_TIME,
       lambda c: c.with_value(c.time_field, 10**17)),
    _k("nan_event_time", BAD_EVENT_TIME, lambda c: c.with_raw(c.time_field, b"NaN")),
    _k("infinity_event_time", BAD_EVENT_TIME, lambda c: c.with_raw(c.time_field, b"-Infinity")),
    _k("huge_integer_event_time", BAD_EVENT_TIME,
       lambda c: c.with_raw(c.time_field, _huge_int(c))),
    _k("overflowing_float_event_time", BAD_EVENT_TIME,
       lambda c: c.with_raw(c.time_field, b"1e400")),
    _k("boolean_event_time", BAD_EVENT_TIME, lambda c: c.with_value(c.time_field, True)),
    _k("object_event_time", BAD_EVENT_TIME,
       lambda c: c.with_value(c.time_field, {"ms": c.template[c.time_field]})),
    _k("huge_string_event_time", BAD_EVENT_TIME,
       lambda c: c.with_value(c.time_field, "7" * c.big), heavy=True),
)

ODD_GOOD_KINDS: tuple[Kind, ...] = (
    _k("bom", None, lambda c: b"\xef\xbb\xbf" + orjson.dumps(c.template)),
    _k("duplicate_keys", None, _dup_keys),
    _k("nan_in_unused_field", None, lambda c: c.with_raw(UNUSED, b"NaN")),
    _k("huge_integer_in_unused_field", None, lambda c: c.with_raw(UNUSED, _huge_int(c))),
    _k("invalid_utf8_in_unused_field", None, lambda c: c.with_raw(UNUSED, b'"\xff\xfe"')),
    _k("unicode_in_unused_field", None,
       lambda c: c.with_value(UNUSED, "ünïcødé ☃ \U0001f600 \u2028")),
    _k("escaped_unicode_in_unused_field", None,
       lambda c: c.with_raw(UNUSED, b'"\\u00fc\\ud83d\\ude00\\n\\"\\\\"')),
    _k("many_new_fields", None, _many_fields),
    _k("whitespace_everywhere", None, _pretty),
    _k("huge_string_in_unused_field", None, lambda c: c.with_value(UNUSED, "a" * c.big),
       heavy=True),
)

KINDS = BAD_KINDS + ODD_GOOD_KINDS
_BY_NAME = {k.name: k for k in KINDS}


def kind_of(name: str) -> Kind:
    return _BY_NAME[name]


def hostile(n: int, template: dict, seed: int = 0, kinds: tuple[Kind, ...] = KINDS,
            time_field: str = "ts", text_field: str = "region", big: int = 2 << 20,
            max_heavy: int = 4) -> list[tuple[str, bytes | None]]:
    """``n`` messages ``(kind name, value)``, the kinds taken in turn (heavy kinds at most
    ``max_heavy`` times each, their turns going to the next kind); ``big`` is the length of
    the huge strings (2 MiB by default; Kafka's default message size limit is 1 MB)."""
    c = _Ctx(dict(template), time_field, text_field, np.random.default_rng(seed), big)
    out: list[tuple[str, bytes | None]] = []
    heavy: Counter = Counter()
    light = [k for k in kinds if not k.heavy]
    i = 0
    while len(out) < n:
        k = kinds[i % len(kinds)]
        i += 1
        if k.heavy:
            if heavy[k.name] >= max_heavy:
                k = light[i % len(light)]
            else:
                heavy[k.name] += 1
        out.append((k.name, k.make(c)))
    return out


def expected_reasons(msgs: list[tuple[str, bytes | None]]) -> Counter:
    """How many of ``msgs`` must be dead-lettered, by reason."""
    return Counter(r for r in (_BY_NAME[k].reason for k, _ in msgs) if r is not None)
