"""Whole-array conversions from decoded field values to ColumnBatch columns.

The decoder hands each configured field over as one array (Arrow for numbers and text, a
list for outcomes), with absent fields and wrong types marked *inside* the values by the
sentinels below, so that every state comes out of whole-array comparisons:

- numbers: ``None`` is a JSON null; :data:`F_MISSING` / :data:`F_TYPE` are quiet NaNs with
  payloads no JSON value produces (the canonical NaN of a ``NaN`` literal stays a value);
- text: ``None`` is a JSON null; :data:`S_MISSING` / :data:`S_TYPE` are reserved strings;
- outcomes (class, label): any scalar, ``None``, :data:`F_MISSING` or :data:`F_TYPE`.

>>> v, state = float_column(pa.array([1.5, None, F_MISSING, F_TYPE]))
>>> v.tolist()[0], state.tolist()
(1.5, [0, 2, 1, 3])
>>> codes, h = category_codes(pa.array(["b", None, S_MISSING, "zz"]), value_set(["a", "b"]))
>>> codes.tolist(), int(h[3]) == category_hash("zz")
([1, -2, -1, -4], True)
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import math
import struct
from itertools import repeat
from operator import is_not, itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Message

from kernels.batch import (CAT_MISSING, CAT_NULL, CAT_TYPE_ERROR, CAT_UNSEEN, MISSING, NULL,
                           TYPE_ERROR, VALID)
from kernels.dedup import hash_strings

# Sentinels carried inside columns. Numbers: quiet NaNs with payloads no JSON value produces
# (JSON has no NaN; the fallback's NaN/Infinity literals give the canonical NaN).
MISS_BITS, TYPE_BITS = 0x7FF8DEAD00000001, 0x7FF8DEAD00000003
F_MISSING = struct.unpack("<d", struct.pack("<Q", MISS_BITS))[0]
F_TYPE = struct.unpack("<d", struct.pack("<Q", TYPE_BITS))[0]
S_MISSING, S_TYPE = "\x00streamdrift:missing\x00", "\x00streamdrift:type_error\x00"
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def category_hash(value: str) -> int:
    """The stable 64-bit hash of a categorical value (blake2b, 8 bytes, little endian).

    >>> category_hash("north") == category_hash("north") != category_hash("south")
    True
    """
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "little")




def value_set(values: list[str]) -> pa.Array:
    """The lookup array for :func:`category_codes`: the profile's values, then the sentinels."""
    return pa.array(list(values) + [S_MISSING, S_TYPE], pa.string())


def float_column(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    v = np.array(a.to_numpy(zero_copy_only=False), np.float64, copy=True)
    state = np.zeros(len(v), np.int8)
    nan = np.isnan(v)
    if nan.any():
        bits = v.view(np.uint64)
        state[bits == np.uint64(MISS_BITS)] = MISSING
        state[bits == np.uint64(TYPE_BITS)] = TYPE_ERROR
        if a.null_count:
            state[a.is_null().to_numpy(zero_copy_only=False)] = NULL
        v[state != VALID] = np.nan
    return v, state


def category_codes(a: pa.Array, value_set: pa.Array, hash_unseen: bool = True):
    k = len(value_set) - 2
    idx = pc.index_in(a, value_set=value_set)
    codes = np.array(idx.fill_null(-9).to_numpy(zero_copy_only=False), np.int32)
    codes[codes == k] = CAT_MISSING
    codes[codes == k + 1] = CAT_TYPE_ERROR
    if a.null_count:
        codes[a.is_null().to_numpy(zero_copy_only=False)] = CAT_NULL
    unseen = codes == -9
    codes[unseen] = CAT_UNSEEN
    hashes = np.zeros(len(codes), np.uint64)
    if hash_unseen and unseen.any():
        vals = a.filter(pa.array(unseen))
        uniq = pc.unique(vals)
        h = np.array([category_hash(u) for u in uniq.to_pylist()], np.uint64)
        hashes[unseen] = h[pc.index_in(vals, value_set=uniq).to_numpy(zero_copy_only=False)]
    return codes, hashes


def outcome_codes(col: list, positive) -> tuple[np.ndarray, dict[str, int]]:
    """1 where the value equals ``positive``, 0 for another scalar, -1 absent/null/wrong."""
    return outcome_finish(outcome_raw(col, positive))


def outcome_raw(col: list, positive) -> np.ndarray:
    """Per value: 1 equals ``positive``, 0 another scalar, 2 absent, 3 null, 4 wrong type."""
    code_of = {}
    for u in set(col):
        if u is None:
            code_of[u] = 3
        elif u is F_MISSING:
            code_of[u] = 2
        elif u is F_TYPE or isinstance(u, float) and math.isnan(u):
            code_of[u] = 4
        else:
            code_of[u] = 1 if u == positive else 0
    return np.fromiter(map(code_of.__getitem__, col), np.int8, len(col))


def outcome_finish(codes: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`outcome_raw` codes -> (1 / 0 / -1 codes, field error counts)."""
    out = np.where(codes <= 1, codes, -1).astype(np.int8)
    c = np.bincount(codes, minlength=5)
    return out, {"missing": int(c[2]), "null": int(c[3]), "type_error": int(c[4])}


def state_counts(state: np.ndarray) -> dict[str, int]:
    c = np.bincount(state, minlength=4)
    return {"missing": int(c[MISSING]), "null": int(c[NULL]), "type_error": int(c[TYPE_ERROR])}


def category_counts(codes: np.ndarray) -> dict[str, int]:
    return {"missing": int((codes == CAT_MISSING).sum()), "null": int((codes == CAT_NULL).sum()),
            "type_error": int((codes == CAT_TYPE_ERROR).sum())}


def iso_column(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 strings -> epoch ms and a state (zone-less times are taken as UTC)."""
    n = len(a)
    state = np.zeros(n, np.int8)
    s = np.array(pc.fill_null(a, "").to_numpy(zero_copy_only=False), dtype=object)
    state[s == S_MISSING] = MISSING
    state[s == S_TYPE] = TYPE_ERROR
    if a.null_count:
        state[a.is_null().to_numpy(zero_copy_only=False)] = NULL
    t = np.zeros(n, np.int64)
    ok = state == VALID
    try:
        ts = pc.cast(a.filter(pa.array(ok)), pa.timestamp("ns", tz="UTC"))
        t[ok] = pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False) // 1_000_000
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for i in np.flatnonzero(ok).tolist():
            ms = parse_iso_ms(s[i])
            if ms is None:
                state[i] = TYPE_ERROR
            else:
                t[i] = ms
    bad = (state == VALID) & ((t < 0) | (t > MAX_MS))
    state[bad] = TYPE_ERROR
    return t, state


def parse_iso_ms(s: str) -> int | None:
    try:
        d = _dt.datetime.fromisoformat(s.strip().replace("z", "Z"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return (d - _EPOCH) // _dt.timedelta(milliseconds=1)


def iso_text(d: _dt.datetime) -> str:
    return (d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)).isoformat()


def number(v: Any) -> float:
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if isinstance(v, _dt.datetime):  # Avro timestamp-millis for a numeric event time
            return float(parse_iso_ms(iso_text(v)))
        return F_TYPE
    try:
        return float(v)
    except OverflowError:  # an integer beyond float range
        return math.inf if v > 0 else -math.inf


def arrow_to_float(col: pa.Array) -> pa.Array:
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return pc.cast(col, pa.float64())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            return pc.cast(col, pa.float64())
        except pa.ArrowInvalid:
            out = []
            for x in col.to_pylist():
                try:
                    out.append(None if x is None else float(x))
                except ValueError:
                    out.append(F_TYPE)
            return pa.array(out, pa.float64())
    if pa.types.is_timestamp(t):
        return pc.cast(pc.cast(col, pa.timestamp("ms", tz=t.tz)), pa.int64()).cast(pa.float64())
    return pa.array([None if x is None else F_TYPE for x in col.to_pylist()], pa.float64())


def arrow_to_string(col: pa.Array, iso: bool = False) -> pa.Array:
    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col.cast(pa.string())
    if iso and pa.types.is_timestamp(t):
        return pc.cast(pc.cast(col, pa.timestamp("ms", tz=t.tz or "UTC")), pa.string())
    if pa.types.is_integer(t) and not iso:  # CSV inference reads "01", "7" ... as ints
        return col.cast(pa.string())
    return pa.array([None if x is None else S_TYPE for x in col.to_pylist()], pa.string())


def id_column(col) -> pa.Array:
    """Event ids (strings or integers, JSON null or absent sentinels) as Arrow strings."""
    try:
        return pa.array(col, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # integer ids: the slow path, once a batch
        return pa.array([x if x is None or isinstance(x, str) else str(x) for x in col],
                        pa.string())


def id_hashes(a: pa.Array) -> np.ndarray:
    """uint64 hashes of an Arrow string array of ids; 0 (no id) for null, absent, wrong type.

    >>> h = id_hashes(id_column(["a", 7, None, S_MISSING, "7"]))
    >>> bool(h[0] != h[1]), h[2:4].tolist(), bool(h[1] == h[4])
    (True, [0, 0], True)
    """
    a = pa.array(a, pa.string()) if not isinstance(a, pa.Array) else a
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    n = len(a)
    valid = np.ones(n, bool) if a.null_count == 0 else \
        a.is_valid().to_numpy(zero_copy_only=False)
    sentinel = pc.is_in(a, value_set=pa.array([S_MISSING, S_TYPE])).to_numpy(
        zero_copy_only=False)
    valid &= ~np.asarray(sentinel, bool)
    bufs = a.buffers()
    offs = np.frombuffer(bufs[1], np.int32)[a.offset: a.offset + n + 1] if n else \
        np.zeros(1, np.int32)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return hash_strings(offs, data, valid)


class BadValue(ValueError):
    """A read field holds a value no column can carry (an unpaired surrogate escape)."""


def checked_unicode(name: str, v: str) -> str:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise BadValue(f"field {name!r} is not valid Unicode (an unpaired surrogate escape "
                       "such as \\ud800)") from None
    return v


def any_error(msgs: list) -> bool:
    """Whether a consumed batch holds an error event (one C-level pass, no Python per message)."""
    return any(map(is_not, map(Message.error, msgs), repeat(None)))


def message_columns(msgs: list) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """(values, partitions, offsets, Kafka timestamps) of consumed messages: one C-level map
    per column over confluent-kafka's messages (its unbound methods, no Python frame per
    message; about a quarter faster than generator expressions)."""
    n = len(msgs)
    part = np.fromiter(map(Message.partition, msgs), np.int32, n)
    offsets = np.fromiter(map(Message.offset, msgs), np.int64, n)
    ts = np.fromiter(map(itemgetter(1), map(Message.timestamp, msgs)), np.int64, n)
    return list(map(Message.value, msgs)), part, offsets, ts
