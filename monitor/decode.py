"""Message batch -> :class:`~kernels.batch.ColumnBatch`; bad messages -> :class:`BadMessage`.

A :class:`Decoder` is built once from the config and the reference profile's category and
group lists. ``decode(values, offsets, timestamps_ms)`` turns one consumed batch into columns:

- **Fast path** (every message a JSON object whose configured fields have the expected JSON
  types): each message is parsed by one ``msgspec`` call into a typed struct that holds only
  the configured fields (others are skipped by the parser); the structs are transposed in C
  (``zip(*map(astuple, ...))``) and each column is converted once (``pa.array``). Absent
  fields and wrong types are marked inside the column by sentinels (NaN payloads for
  numbers, reserved strings for text), so states come out of whole-array comparisons. No
  Python runs per field per event.
- **Fallback** (any message in the batch fails the fast path): the batch is classified message
  by message — msgspec, else orjson, else the standard library (which reads ``NaN``,
  ``Infinity`` and out-of-range numbers such as ``1e400``) — and each field is checked in
  Python. Only that batch pays. Both paths give identical results on good data (tested).

Bad messages (not JSON, not an object, empty, a null value/tombstone, no event time, an
unusable event time) are left out of the batch and listed in ``Decoded.bad``. Field-level
problems (absent field, JSON null, wrong type) keep the event in the batch with the
ColumnBatch state codes and are counted in ``Decoded.field_errors``.

Categorical values map to the profile's category index; values the profile does not know get
``CAT_UNSEEN`` and :func:`category_hash` (blake2b-64 of the UTF-8 value), computed once per
distinct unseen value. Categories must be JSON strings: numbers and booleans in a categorical
field count as type errors.

>>> from monitor.config import from_dict
>>> cfg = from_dict({"monitor": "m", "kafka": {"bootstrap": "k:9092"},
...     "stream": {"topic": "t", "event_time": {"field": "ts"}},
...     "features": {"numeric": ["income"], "categorical": ["region"]},
...     "windows": {"size": "1m"}, "reference": {"profile": "/r"}}, env={})
>>> d = Decoder(cfg, {"region": ["north", "south"]}, [])
>>> out = d.decode([b'{"ts": 5, "income": 1.5, "region": "south"}',
...                 b'{"ts": 6, "region": "mars"}', b'not json'],
...                np.array([10, 11, 12]), np.zeros(3, np.int64))
>>> out.batch.numeric.tolist(), out.batch.numeric_state.tolist(), out.batch.categorical.tolist()
([[1.5, nan]], [[0, 1]], [[1, -4]])
>>> [(b.offset, b.reason) for b in out.bad], out.field_errors["income"]
([(12, 'malformed')], {'missing': 1, 'null': 0, 'type_error': 0})
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import io
import json
import math
import struct
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Union

import fastavro
import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kernels.batch import (CAT_MISSING, CAT_NULL, CAT_TYPE_ERROR, CAT_UNSEEN, MISSING, NULL,
                           TYPE_ERROR, VALID, ColumnBatch)
from monitor.config import MonitorConfig
from monitor.errors import DecodeError, SchemaRegistryError

MALFORMED, MISSING_EVENT_TIME, BAD_EVENT_TIME = "malformed", "missing_event_time", "bad_event_time"
REASONS = (MALFORMED, MISSING_EVENT_TIME, BAD_EVENT_TIME)

# Sentinels carried inside columns. Numbers: quiet NaNs with payloads no JSON value produces
# (JSON has no NaN; the fallback's NaN/Infinity literals give the canonical NaN).
_MISS_BITS, _TYPE_BITS = 0x7FF8DEAD00000001, 0x7FF8DEAD00000003
_F_MISSING = struct.unpack("<d", struct.pack("<Q", _MISS_BITS))[0]
_F_TYPE = struct.unpack("<d", struct.pack("<Q", _TYPE_BITS))[0]
_S_MISSING, _S_TYPE = "\x00streamdrift:missing\x00", "\x00streamdrift:type_error\x00"
_ABSENT = object()
_SAMPLE = 16  # messages per batch parsed in full to spot unexpected fields
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def category_hash(value: str) -> int:
    """The stable 64-bit hash of a categorical value (blake2b, 8 bytes, little endian).

    >>> category_hash("north") == category_hash("north") != category_hash("south")
    True
    """
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "little")


@dataclass(frozen=True)
class BadMessage:
    """A message left out of the batch: its index in the input, offset, reason (one of
    :data:`REASONS`) and a short error text for the dead-letter headers."""

    index: int
    offset: int
    reason: str
    error: str


@dataclass(frozen=True)
class Decoded:
    """What one decode call produced.

    ``field_errors[field]`` counts ``missing`` / ``null`` / ``type_error`` among the good
    events; ``unexpected_fields`` counts, over ``sampled`` messages parsed in full, fields that
    the config does not read (a new field in the producer's schema); ``absent_fields`` lists
    configured fields absent from every good event (a field that disappeared).
    ``fallback`` says whether the batch took the slow path.
    """

    batch: ColumnBatch
    bad: list[BadMessage]
    field_errors: dict[str, dict[str, int]]
    unexpected_fields: dict[str, int] = field(default_factory=dict)
    sampled: int = 0
    absent_fields: tuple[str, ...] = ()
    fallback: bool = False

    @property
    def bad_counts(self) -> dict[str, int]:
        return dict(Counter(b.reason for b in self.bad))


class _Kind:
    NUM, STR, OUTCOME = "num", "str", "outcome"


class Decoder:
    """Decodes batches of one monitored stream (see the module docstring).

    ``categories`` maps each categorical feature to the profile's category list (the index in
    it is the code); ``groups`` is the profile's list of sensitive groups.
    """

    def __init__(self, cfg: MonitorConfig, categories: dict[str, list[str]],
                 groups: list[str]) -> None:
        self.cfg = cfg
        missing = [c for c in cfg.features.categorical if c not in categories]
        if missing:
            raise DecodeError(f"the reference profile has no category list for {missing}: "
                              "rebuild the profile with this config's features")
        self.categories = {c: list(categories[c]) for c in cfg.features.categorical}
        self.groups = list(groups)
        self._value_sets = {c: pa.array(v + [_S_MISSING, _S_TYPE], pa.string())
                            for c, v in self.categories.items()}
        self._group_set = pa.array(self.groups + [_S_MISSING, _S_TYPE], pa.string())
        p, et = cfg.prediction, cfg.stream.event_time
        kinds: dict[str, str] = {}
        for n in cfg.features.numeric:
            kinds[n] = _Kind.NUM
        for n in cfg.features.categorical:
            kinds[n] = _Kind.STR
        if p.score:
            kinds[p.score] = _Kind.NUM
        for f in (p.class_, p.label):
            if f:
                kinds[f] = _Kind.OUTCOME
        if cfg.sensitive:
            kinds.setdefault(cfg.sensitive.attribute, _Kind.STR)
        self.time_field = et.field if et else None
        self.time_unit = et.unit if et else "ms"
        if et:
            kinds[et.field] = _Kind.STR if et.unit == "iso8601" else _Kind.NUM
        self.fields = list(kinds)  # the struct's field order = the row tuple order
        self.kinds = kinds
        self.pos = {f: i for i, f in enumerate(self.fields)}
        self.known = set(self.fields) | ({cfg.stream.event_id_field} - {None})
        types = {_Kind.NUM: Union[float, None], _Kind.STR: Union[str, None],
                 _Kind.OUTCOME: Union[bool, int, float, str, None]}
        defaults = {_Kind.NUM: _F_MISSING, _Kind.STR: _S_MISSING, _Kind.OUTCOME: _F_MISSING}
        spec = [(f"f{i}", types[kinds[n]], defaults[kinds[n]]) for i, n in enumerate(self.fields)]
        rename = {f"f{i}": n for i, n in enumerate(self.fields)}
        self._struct = msgspec.defstruct("Event", spec, rename=rename, forbid_unknown_fields=False)
        self._decoder = msgspec.json.Decoder(self._struct)
        self._registry: SchemaRegistry | None = None

    def decode(self, values: list[bytes | None], offsets: np.ndarray,
               timestamps_ms: np.ndarray) -> Decoded:
        """Decode a batch of message values (``None`` for a tombstone) in the configured
        format: JSON, or Avro in Confluent wire format."""
        if self.cfg.stream.format == "avro":
            return self.decode_avro(values, offsets, timestamps_ms)
        return self.decode_json(values, offsets, timestamps_ms)

    __call__ = decode

    # -- Avro ------------------------------------------------------------------------------
    def decode_avro(self, values: list[bytes | None], offsets: np.ndarray,
                    timestamps_ms: np.ndarray) -> Decoded:
        """Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro body. The
        writer schema is fetched from the registry once per id. An unknown id makes the
        message malformed; an unreachable registry raises :class:`SchemaRegistryError`."""
        if self._registry is None:
            if not self.cfg.stream.schema_registry_url:
                raise DecodeError("Avro needs stream.schema_registry_url in the config")
            self._registry = SchemaRegistry(self.cfg.stream.schema_registry_url)
        offsets = np.asarray(offsets, np.int64)
        records: list[Any] = []
        for i, v in enumerate(values):
            records.append(self._avro_record(i, int(offsets[i]), v))
        return self.decode_records(records, offsets, timestamps_ms)

    def _avro_record(self, i: int, offset: int, v: bytes | None) -> Any:
        if v is None:
            return BadMessage(i, offset, MALFORMED, "null value (tombstone)")
        if len(v) < 5 or v[0] != 0:
            return BadMessage(i, offset, MALFORMED, "not Confluent wire format (magic byte 0 "
                              "+ 4-byte schema id + Avro body)")
        sid = int.from_bytes(v[1:5], "big")
        try:
            schema = self._registry.schema(sid)
        except UnknownSchemaError as e:
            return BadMessage(i, offset, MALFORMED, str(e))
        try:
            return fastavro.schemaless_reader(io.BytesIO(v[5:]), schema, None)
        except Exception as e:  # fastavro raises many types on a corrupt body
            return BadMessage(i, offset, MALFORMED, f"Avro body does not match schema id "
                              f"{sid}: {type(e).__name__}: {str(e)[:200]}")

    # -- JSON ------------------------------------------------------------------------------
    def decode_json(self, values: list[bytes | None], offsets: np.ndarray,
                    timestamps_ms: np.ndarray) -> Decoded:
        """Decode a batch of JSON message values (``None`` for a tombstone)."""
        offsets = np.asarray(offsets, np.int64)
        timestamps_ms = np.asarray(timestamps_ms, np.int64)
        astuple = msgspec.structs.astuple
        try:
            rows = list(map(astuple, map(self._decoder.decode, values)))
            good = None
            bad: list[BadMessage] = []
            fallback = False
        except (msgspec.DecodeError, TypeError, ValueError):
            rows, good, bad = self._classify_json(values, offsets)
            fallback = True
        return self._finish(rows, good, bad, offsets, timestamps_ms, values, fallback)

    def _classify_json(self, values, offsets):
        astuple = msgspec.structs.astuple
        rows, good, bad = [], [], []
        for i, v in enumerate(values):
            if v is None or not v.strip():
                bad.append(BadMessage(i, int(offsets[i]), MALFORMED,
                                      "null value (tombstone)" if v is None else "empty value"))
                continue
            try:
                rows.append(astuple(self._decoder.decode(v)))
                good.append(i)
                continue
            except (msgspec.DecodeError, TypeError, ValueError):
                pass
            obj, err = _parse_any(v)
            if err is not None or not isinstance(obj, dict):
                bad.append(BadMessage(i, int(offsets[i]), MALFORMED,
                                      err or f"not a JSON object but {type(obj).__name__}"))
                continue
            rows.append(self._row(obj))
            good.append(i)
        return rows, good, bad

    def _row(self, obj: dict) -> tuple:
        """One record's values in struct order, type-checked, with sentinels."""
        out = []
        for n in self.fields:
            v = obj.get(n, _ABSENT)
            k = self.kinds[n]
            if v is _ABSENT:
                out.append(_S_MISSING if k == _Kind.STR else _F_MISSING)
            elif v is None:
                out.append(None)
            elif k == _Kind.NUM:
                out.append(_number(v))
            elif k == _Kind.STR:
                out.append(v if isinstance(v, str) else
                           (_iso(v) if n == self.time_field and isinstance(v, _dt.datetime)
                            else _S_TYPE))
            else:
                out.append(v if isinstance(v, (bool, int, float, str)) else _F_TYPE)
        return tuple(out)

    def decode_records(self, records: list[Any], offsets: np.ndarray,
                       timestamps_ms: np.ndarray) -> Decoded:
        """Decode already-parsed records (dicts, e.g. from Avro); non-dicts are malformed."""
        offsets = np.asarray(offsets, np.int64)
        rows, good, bad = [], [], []
        for i, r in enumerate(records):
            if isinstance(r, BadMessage):
                bad.append(r)
            elif not isinstance(r, dict):
                bad.append(BadMessage(i, int(offsets[i]), MALFORMED,
                                      f"not a record but {type(r).__name__}"))
            else:
                rows.append(self._row(r))
                good.append(i)
        return self._finish(rows, good, bad, offsets, np.asarray(timestamps_ms, np.int64),
                            None, True)

    # -- columns ---------------------------------------------------------------------------
    def _finish(self, rows, good, bad, offsets, ts, values, fallback) -> Decoded:
        n_in = len(offsets)
        good_idx = np.arange(n_in, dtype=np.int64) if good is None else np.asarray(good, np.int64)
        cols = list(zip(*rows)) if rows else [() for _ in self.fields]
        arrays = {}
        for n, col in zip(self.fields, cols):
            k = self.kinds[n]
            arrays[n] = (pa.array(col, pa.float64()) if k == _Kind.NUM else
                         pa.array(col, pa.string()) if k == _Kind.STR else list(col))
        decoded = self._assemble(arrays, len(good_idx), offsets[good_idx], ts[good_idx],
                                 good_idx, bad)
        unexpected, sampled = self._sample_keys(values) if values is not None else ({}, 0)
        return Decoded(batch=decoded[0], bad=sorted(decoded[1], key=lambda b: b.index),
                       field_errors=decoded[2], unexpected_fields=unexpected, sampled=sampled,
                       absent_fields=decoded[3], fallback=fallback)

    def _assemble(self, arrays: dict[str, Any], n: int, offsets, kafka_ts, idx, bad):
        """Per-field arrays (sentinel conventions above) -> batch, bad list, field errors."""
        bad = list(bad)
        # event time first: it decides which rows stay
        if self.time_field is None:
            t = np.asarray(kafka_ts, np.int64)
            keep = t >= 0
            reasons = np.where(keep, "", MISSING_EVENT_TIME)
            errs = np.where(keep, "", "the Kafka message has no timestamp")
        else:
            t, reasons, errs = self._event_time(arrays[self.time_field], n)
            keep = reasons == ""
        for j in np.flatnonzero(~keep).tolist():
            bad.append(BadMessage(int(idx[j]), int(offsets[j]), str(reasons[j]), str(errs[j])))
        sel = None if keep.all() else np.flatnonzero(keep)

        def kept(a):
            if sel is None:
                return a
            return a.take(pa.array(sel)) if isinstance(a, pa.Array) else [a[i] for i in sel]

        m = n if sel is None else len(sel)
        errors: dict[str, dict[str, int]] = {}
        num, num_state = np.empty((len(self.cfg.features.numeric), m)), \
            np.empty((len(self.cfg.features.numeric), m), np.int8)
        for i, f in enumerate(self.cfg.features.numeric):
            num[i], num_state[i] = _float_column(kept(arrays[f]))
            errors[f] = _state_counts(num_state[i])
        cat = np.empty((len(self.cfg.features.categorical), m), np.int32)
        uh = np.zeros((len(self.cfg.features.categorical), m), np.uint64)
        for i, f in enumerate(self.cfg.features.categorical):
            cat[i], uh[i] = _codes(kept(arrays[f]), self._value_sets[f])
            errors[f] = _cat_counts(cat[i])
        p = self.cfg.prediction
        score = np.full(m, np.nan)
        if p.score:
            score, st = _float_column(kept(arrays[p.score]))
            errors[p.score] = _state_counts(st)
        pred = np.full(m, -1, np.int8)
        if p.class_:
            pred, errors[p.class_] = _outcome(kept(arrays[p.class_]), p.positive_class)
        elif p.score and p.threshold is not None:
            pred = np.where(np.isnan(score), -1, score >= p.threshold).astype(np.int8)
        label = np.full(m, -1, np.int8)
        if p.label:
            label, errors[p.label] = _outcome(kept(arrays[p.label]), p.positive_label)
        group = np.full(m, -1, np.int32)
        if self.cfg.sensitive:
            a = self.cfg.sensitive.attribute
            group, _ = _codes(kept(arrays[a]), self._group_set, hash_unseen=False)
            if a not in errors:
                errors[a] = _cat_counts(group)
            group[(group < 0) & (group != CAT_UNSEEN)] = -1
        batch = ColumnBatch(numeric=num, numeric_state=num_state, categorical=cat,
                            unseen_hash=uh, score=score, prediction=pred, label=label,
                            group=group, event_time_ms=t[keep] if sel is not None else t,
                            offset=offsets[keep] if sel is not None else offsets)
        absent = tuple(f for f, e in errors.items() if m and e["missing"] == m)
        return batch, bad, errors, absent

    def _event_time(self, a, n: int):
        """Event times in ms, and per row "" or a bad reason with its error text."""
        reasons = np.full(n, "", dtype=object)
        errs = np.full(n, "", dtype=object)
        f = self.time_field
        if self.time_unit == "iso8601":
            t, state = _iso_column(a)
        else:
            v, state = _float_column(a)
            scale = 1000.0 if self.time_unit == "s" else 1.0
            with np.errstate(invalid="ignore", over="ignore"):
                w = np.round(v * scale)
                ok = (state == VALID) & np.isfinite(w) & (w >= 0) & (w <= _MAX_MS)
            state = np.where((state == VALID) & ~ok, TYPE_ERROR, state)
            t = np.where(ok, w, 0).astype(np.int64)
        miss = (state == MISSING) | (state == NULL)
        reasons[miss] = MISSING_EVENT_TIME
        errs[state == MISSING] = f"no field {f!r}"
        errs[state == NULL] = f"{f!r} is null"
        badt = state == TYPE_ERROR
        reasons[badt] = BAD_EVENT_TIME
        errs[badt] = (f"{f!r} is not an ISO 8601 time" if self.time_unit == "iso8601" else
                      f"{f!r} is not a number of {self.time_unit} between 1970 and 9999")
        return t, reasons.astype(str), errs.astype(str)

    def _sample_keys(self, values) -> tuple[dict[str, int], int]:
        n = len(values)
        if n == 0:
            return {}, 0
        idx = np.unique(np.linspace(0, n - 1, min(n, _SAMPLE)).astype(np.int64)).tolist()
        seen: Counter = Counter()
        sampled = 0
        for i in idx:
            try:
                obj = orjson.loads(values[i])
            except (orjson.JSONDecodeError, TypeError):
                continue
            if isinstance(obj, dict):
                sampled += 1
                seen.update(k for k in obj if k not in self.known)
        return dict(seen), sampled

    # -- tables (replay, profile build) ----------------------------------------------------
    def decode_table(self, table: pa.Table, offsets: np.ndarray | None = None,
                     timestamps_ms: np.ndarray | None = None, first_offset: int = 0) -> Decoded:
        """Decode an Arrow table (from Parquet or CSV): a column per field, nulls are JSON
        nulls, absent columns are absent fields. ``offsets`` default to row numbers from
        ``first_offset``; ``timestamps_ms`` stand in for Kafka timestamps when the config
        has no event-time field (default: all missing)."""
        n = table.num_rows
        offsets = (np.arange(first_offset, first_offset + n, dtype=np.int64)
                   if offsets is None else np.asarray(offsets, np.int64))
        ts = np.full(n, -1, np.int64) if timestamps_ms is None else np.asarray(timestamps_ms,
                                                                               np.int64)
        arrays: dict[str, Any] = {}
        names = set(table.column_names)
        for f in self.fields:
            k = self.kinds[f]
            if f not in names:
                arrays[f] = (pa.array(np.full(n, _F_MISSING)) if k == _Kind.NUM else
                             pa.array([_S_MISSING] * n, pa.string()) if k == _Kind.STR
                             else [_F_MISSING] * n)
                continue
            col = table.column(f).combine_chunks()
            if k == _Kind.OUTCOME:
                arrays[f] = col.to_pylist()
            elif k == _Kind.NUM:
                arrays[f] = _arrow_to_float(col)
            else:
                arrays[f] = _arrow_to_string(col, iso=(f == self.time_field))
        idx = np.arange(n, dtype=np.int64)
        batch, bad, errors, absent = self._assemble(arrays, n, offsets, ts, idx, [])
        return Decoded(batch=batch, bad=sorted(bad, key=lambda b: b.index),
                       field_errors=errors, absent_fields=absent, fallback=False,
                       unexpected_fields={c: n for c in table.column_names
                                          if c not in self.known}, sampled=n)


class UnknownSchemaError(SchemaRegistryError):
    """The registry answered 404 for a schema id: the message cannot be decoded."""


class SchemaRegistry:
    """A minimal Confluent schema-registry client: ``GET {url}/schemas/ids/{id}``, parsed
    with fastavro and cached for the life of the process (ids are immutable). Unknown ids
    are remembered for ``negative_ttl_s`` so a flood of bad messages does not hammer the
    registry."""

    def __init__(self, url: str, timeout_s: float = 5.0, attempts: int = 3,
                 negative_ttl_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s, self.attempts, self.negative_ttl_s = timeout_s, attempts, negative_ttl_s
        self._cache: dict[int, Any] = {}
        self._unknown: dict[int, float] = {}

    def schema(self, schema_id: int) -> Any:
        s = self._cache.get(schema_id)
        if s is not None:
            return s
        t = self._unknown.get(schema_id)
        if t is not None and time.monotonic() - t < self.negative_ttl_s:
            raise UnknownSchemaError(f"schema id {schema_id} is unknown to the registry")
        url = f"{self.url}/schemas/ids/{schema_id}"
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as r:
                    body = json.loads(r.read())
                s = fastavro.parse_schema(json.loads(body["schema"]))
                self._cache[schema_id] = s
                return s
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    self._unknown[schema_id] = time.monotonic()
                    raise UnknownSchemaError(
                        f"schema id {schema_id} is unknown to the registry") from None
                last = e
            except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
                last = e
            time.sleep(0.2 * (attempt + 1))
        raise SchemaRegistryError(f"schema registry {self.url} failed for id {schema_id} "
                                  f"after {self.attempts} attempts: {last}")


def from_arrow(table: pa.Table, cfg: MonitorConfig, categories: dict[str, list[str]],
               groups: list[str], first_offset: int = 0) -> ColumnBatch:
    """The good rows of an Arrow table as a ColumnBatch (offsets are row numbers from
    ``first_offset``). Rows without a usable event time are left out; use
    :meth:`Decoder.decode_table` to see them and the field error counts."""
    return Decoder(cfg, categories, groups).decode_table(table, first_offset=first_offset).batch


# -- column helpers (whole-array work) ---------------------------------------------------

def _float_column(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    v = np.array(a.to_numpy(zero_copy_only=False), np.float64, copy=True)
    state = np.zeros(len(v), np.int8)
    nan = np.isnan(v)
    if nan.any():
        bits = v.view(np.uint64)
        state[bits == np.uint64(_MISS_BITS)] = MISSING
        state[bits == np.uint64(_TYPE_BITS)] = TYPE_ERROR
        if a.null_count:
            state[a.is_null().to_numpy(zero_copy_only=False)] = NULL
        v[state != VALID] = np.nan
    return v, state


def _codes(a: pa.Array, value_set: pa.Array, hash_unseen: bool = True):
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


def _outcome(col: list, positive) -> tuple[np.ndarray, dict[str, int]]:
    """1 where the value equals ``positive``, 0 for another scalar, -1 absent/null/wrong."""
    code_of = {}
    for u in set(col):
        if u is None:
            code_of[u] = 3
        elif u is _F_MISSING:
            code_of[u] = 2
        elif u is _F_TYPE or isinstance(u, float) and math.isnan(u):
            code_of[u] = 4
        else:
            code_of[u] = 1 if u == positive else 0
    codes = np.fromiter(map(code_of.__getitem__, col), np.int8, len(col))
    out = np.where(codes <= 1, codes, -1).astype(np.int8)
    c = np.bincount(codes, minlength=5)
    return out, {"missing": int(c[2]), "null": int(c[3]), "type_error": int(c[4])}


def _state_counts(state: np.ndarray) -> dict[str, int]:
    c = np.bincount(state, minlength=4)
    return {"missing": int(c[MISSING]), "null": int(c[NULL]), "type_error": int(c[TYPE_ERROR])}


def _cat_counts(codes: np.ndarray) -> dict[str, int]:
    return {"missing": int((codes == CAT_MISSING).sum()), "null": int((codes == CAT_NULL).sum()),
            "type_error": int((codes == CAT_TYPE_ERROR).sum())}


def _iso_column(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 strings -> epoch ms and a state (zone-less times are taken as UTC)."""
    n = len(a)
    state = np.zeros(n, np.int8)
    s = np.array(pc.fill_null(a, "").to_numpy(zero_copy_only=False), dtype=object)
    state[s == _S_MISSING] = MISSING
    state[s == _S_TYPE] = TYPE_ERROR
    if a.null_count:
        state[a.is_null().to_numpy(zero_copy_only=False)] = NULL
    t = np.zeros(n, np.int64)
    ok = state == VALID
    try:
        ts = pc.cast(a.filter(pa.array(ok)), pa.timestamp("ns", tz="UTC"))
        t[ok] = pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False) // 1_000_000
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for i in np.flatnonzero(ok).tolist():
            ms = _parse_iso_ms(s[i])
            if ms is None:
                state[i] = TYPE_ERROR
            else:
                t[i] = ms
    bad = (state == VALID) & ((t < 0) | (t > _MAX_MS))
    state[bad] = TYPE_ERROR
    return t, state


def _parse_iso_ms(s: str) -> int | None:
    try:
        d = _dt.datetime.fromisoformat(s.strip().replace("z", "Z"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return (d - _EPOCH) // _dt.timedelta(milliseconds=1)


def _iso(d: _dt.datetime) -> str:
    return (d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)).isoformat()


def _number(v: Any) -> float:
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if isinstance(v, _dt.datetime):  # Avro timestamp-millis for a numeric event time
            return float(_parse_iso_ms(_iso(v)))
        return _F_TYPE
    try:
        return float(v)
    except OverflowError:  # an integer beyond float range
        return math.inf if v > 0 else -math.inf


def _parse_any(v: bytes) -> tuple[Any, str | None]:
    """orjson, else the standard library (NaN, Infinity, 1e400); (value, error)."""
    try:
        return orjson.loads(v), None
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(v), None
    except (ValueError, RecursionError) as e:
        return None, f"not JSON: {str(e)[:200]}"


def _arrow_to_float(col: pa.Array) -> pa.Array:
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
                    out.append(_F_TYPE)
            return pa.array(out, pa.float64())
    if pa.types.is_timestamp(t):
        return pc.cast(pc.cast(col, pa.timestamp("ms", tz=t.tz)), pa.int64()).cast(pa.float64())
    return pa.array([None if x is None else _F_TYPE for x in col.to_pylist()], pa.float64())


def _arrow_to_string(col: pa.Array, iso: bool = False) -> pa.Array:
    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col.cast(pa.string())
    if iso and pa.types.is_timestamp(t):
        return pc.cast(pc.cast(col, pa.timestamp("ms", tz=t.tz or "UTC")), pa.string())
    if pa.types.is_integer(t) and not iso:  # CSV inference reads "01", "7" ... as ints
        return col.cast(pa.string())
    return pa.array([None if x is None else _S_TYPE for x in col.to_pylist()], pa.string())
