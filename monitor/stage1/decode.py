"""Message batch -> :class:`~kernels.batch.ColumnBatch`; bad messages -> :class:`BadMessage`.

A :class:`Decoder` is built once from the config and the reference profile's category and
group lists. ``decode(values, offsets, timestamps_ms)`` turns one consumed batch into columns:

- **JSON, compiled path** (:mod:`.json_native` over :mod:`kernels.json_scan`): one pass over
  the batch's bytes writes the configured fields' columns; a message it does not fully
  understand goes through the general path, for that message only (``fallback_messages``).
- **JSON, general path**: one ``msgspec`` call per message into a typed struct of the
  configured fields, transposed in C and converted once per column; from the first message
  that fails, message by message — msgspec, else orjson, else the standard library (which
  reads ``NaN``, ``Infinity`` and ``1e400``). Both paths give identical results (tested).
- **Avro** (:mod:`.avro`) and **Arrow tables** (:mod:`.tables`) through the same contract.

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
import keyword
from typing import Any, Union

import msgspec
import numpy as np
import pyarrow as pa

from kernels.batch import ColumnBatch
from monitor.config import MonitorConfig
from monitor.errors import DecodeError, SchemaRegistryError
from monitor.stage1.assemble import (BAD_EVENT_TIME, MALFORMED, MISSING_EVENT_TIME, build,
                                     convert)
from monitor.stage1.decoded import BadMessage, Decoded, Sample, _Kind
from monitor.stage1.columns import (F_MISSING, F_TYPE, S_MISSING, S_TYPE, category_hash,
                                    id_column, iso_text, number, value_set,
                                    BadValue as _BadValue, checked_unicode as _unicode)
from monitor.stage1.isolate import UNDECODABLE, isolate
from monitor.stage1.json_native import NativeJson, general_rows
from monitor.stage1.json_fallback import parse_any, top_level_keys
from monitor.stage1.schema_names import NewFieldNames
from monitor.stage1.schema_registry import SchemaRegistry

__all__ = ["BadMessage", "Decoded", "Decoder", "from_arrow", "category_hash", "REASONS",
           "MALFORMED", "MISSING_EVENT_TIME", "BAD_EVENT_TIME"]

REASONS = (MALFORMED, MISSING_EVENT_TIME, BAD_EVENT_TIME, UNDECODABLE)

_ABSENT = object()
SAMPLE_EVERY = 64  # messages at offsets divisible by this are parsed in full for new fields


class Decoder:
    """Decodes batches of one monitored stream (see the module docstring).

    ``categories`` maps each categorical feature to the profile's category list (the index in
    it is the code); ``groups`` is the profile's list of sensitive groups; ``known_fields``
    are fields the producer may send that are not read (the reference's columns).
    ``stream.event_id_field`` (a string or an integer) becomes ``event_id_hash``; with
    ``checks.quality.max_event_delay`` the Kafka timestamps become ``ingest_time_ms``.
    """

    def __init__(self, cfg: MonitorConfig, categories: dict[str, list[str]],
                 groups: list[str], known_fields: tuple[str, ...] = (),
                 sample_every: int = SAMPLE_EVERY, native: bool = True) -> None:
        self.cfg = cfg
        missing = [c for c in cfg.features.categorical if c not in categories]
        if missing:
            raise DecodeError(f"the reference profile has no category list for {missing}: "
                              "rebuild the profile with this config's features")
        self.categories = {c: list(categories[c]) for c in cfg.features.categorical}
        self.groups = list(groups)
        self._value_sets = {c: value_set(v)
                            for c, v in self.categories.items()}
        self._group_set = value_set(self.groups)
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
        quality = cfg.checks.quality.enabled  # off: no ids, no samples, no ingest times
        self.id_field = cfg.stream.event_id_field if quality else None
        if self.id_field:
            kinds.setdefault(self.id_field, _Kind.ID)
        self.fields = list(kinds)  # the struct's field order = the row tuple order
        self.kinds = kinds
        self.pos = {f: i for i, f in enumerate(self.fields)}
        self.known = (set(self.fields) | set(cfg.stream.known_fields) | set(known_fields)
                      | ({cfg.stream.event_id_field} - {None}))
        self.sample_every = sample_every if quality else 0
        self.ingest_times = quality and cfg.checks.quality.max_event_delay_ms is not None
        types = {_Kind.NUM: Union[float, None], _Kind.STR: Union[str, None],
                 _Kind.OUTCOME: Union[bool, int, float, str, None],
                 _Kind.ID: Union[str, int, None]}
        defaults = {_Kind.NUM: F_MISSING, _Kind.STR: S_MISSING, _Kind.OUTCOME: F_MISSING,
                    _Kind.ID: S_MISSING}
        # struct attributes are the JSON names where Python allows it: msgspec parses about
        # 30 % slower with a rename table
        attr = {n: n if n.isidentifier() and not keyword.iskeyword(n) and n[0] != "_"
                else f"_f{i}" for i, n in enumerate(self.fields)}
        spec = [(attr[n], types[kinds[n]], defaults[kinds[n]]) for n in self.fields]
        rename = {a: n for n, a in attr.items() if a != n}
        self._struct = msgspec.defstruct("Event", spec, rename=rename or None,
                                         forbid_unknown_fields=False)
        self._decoder = msgspec.json.Decoder(self._struct)
        self._registry: SchemaRegistry | None = None
        self._new_names = NewFieldNames()
        self._native = NativeJson(self) if native and (not self.id_field or kinds[self.id_field] in (_Kind.ID, _Kind.STR)) else None

    def decode(self, values: list[bytes | None], offsets: np.ndarray,
               timestamps_ms: np.ndarray) -> Decoded:
        """Decode a batch of message values (``None`` for a tombstone) in the configured
        format: JSON, or Avro in Confluent wire format."""
        try:
            return self._decode(values, offsets, timestamps_ms)
        except (SchemaRegistryError, MemoryError):
            raise  # an unreachable registry is not the message's fault
        except Exception:  # noqa: BLE001 - hostile input must never stop stage 1
            return isolate(self._decode, values, offsets, timestamps_ms)

    __call__ = decode

    def _decode(self, values, offsets, timestamps_ms) -> Decoded:
        if self.cfg.stream.format == "avro":
            return self.decode_avro(values, offsets, timestamps_ms)
        return self.decode_json(values, offsets, timestamps_ms)

    # -- Avro (monitor/stage1/avro.py) ----------------------------------------------------
    def decode_avro(self, values: list[bytes | None], offsets: np.ndarray,
                    timestamps_ms: np.ndarray) -> Decoded:
        """Confluent wire format through the same column contract (:mod:`.avro`)."""
        from monitor.stage1.avro import decode_avro

        return decode_avro(self, values, offsets, timestamps_ms)

    # -- JSON ------------------------------------------------------------------------------
    def decode_json(self, values: list[bytes | None], offsets: np.ndarray,
                    timestamps_ms: np.ndarray) -> Decoded:
        """Decode a batch of JSON message values (``None`` for a tombstone): the compiled
        scanner, with the general path for the messages it leaves (see json_native)."""
        if self._native is None:
            return self.decode_json_general(values, offsets, timestamps_ms)
        offsets = np.asarray(offsets, np.int64)
        ts = np.asarray(timestamps_ms, np.int64)
        n = len(values)
        c, slow, odd_keys = self._native.convert(values)
        bad: list[BadMessage] = []
        good_idx = np.arange(n, dtype=np.int64)
        if slow.size:
            sub, sub_good, bad = general_rows(self, values, offsets, slow)
            c.put(sub_good, sub)
            if bad:
                keep = np.ones(n, np.bool_)
                keep[[b.index for b in bad]] = False
                good_idx = np.flatnonzero(keep)
                c = c.take(good_idx)
        batch, bad, errors, absent = build(self, c, len(good_idx), offsets[good_idx],
                                           ts[good_idx], good_idx, bad, BadMessage)
        samples = self._sample_keys(values, offsets, good_idx, bad, odd_keys) \
            if self.sample_every else []
        return Decoded(batch=batch, bad=sorted(bad, key=lambda b: b.index), field_errors=errors,
                       absent_fields=absent, fallback=bool(slow.size), samples=samples,
                       fallback_messages=int(slow.size))

    def decode_json_general(self, values: list[bytes | None], offsets: np.ndarray,
                            timestamps_ms: np.ndarray) -> Decoded:
        """Today's general path for a whole batch: msgspec for every message, the per-message
        classification (msgspec, orjson, the standard library) from the first that fails."""
        offsets = np.asarray(offsets, np.int64)
        timestamps_ms = np.asarray(timestamps_ms, np.int64)
        rows: list[tuple] = []
        try:  # extend() keeps what it got before a message fails: only the rest pays
            rows.extend(map(msgspec.structs.astuple, map(self._decoder.decode, values)))
            good, bad, fallback = None, [], False
        except Exception:  # noqa: BLE001 - msgspec.DecodeError, RecursionError, ...
            start = len(rows)
            more, good, bad = self._classify_json(values, offsets, start)
            rows += more
            good = list(range(start)) + good
            fallback = True
        return self._finish(rows, good, bad, offsets, timestamps_ms, values, fallback)

    def _classify_json(self, values, offsets, start: int = 0):
        astuple = msgspec.structs.astuple
        rows, good, bad = [], [], []
        for i in range(start, len(values)):
            v = values[i]
            if v is None or not v.strip():
                bad.append(BadMessage(i, int(offsets[i]), MALFORMED,
                                      "null value (tombstone)" if v is None else "empty value"))
                continue
            try:
                rows.append(astuple(self._decoder.decode(v)))
                good.append(i)
                continue
            except Exception:  # noqa: BLE001 - any parser failure: the slower parsers decide
                pass
            obj, err = parse_any(v)
            if err is None and not isinstance(obj, dict):
                err = f"not a JSON object but {type(obj).__name__}"
            if err is None:
                try:
                    row = self._row(obj)
                except _BadValue as e:
                    err = str(e)
            if err is not None:
                bad.append(BadMessage(i, int(offsets[i]), MALFORMED, err))
                continue
            rows.append(row)
            good.append(i)
        return rows, good, bad

    def _row(self, obj: dict) -> tuple:
        """One record's values in struct order, type-checked, with sentinels."""
        out = []
        for n in self.fields:
            v = obj.get(n, _ABSENT)
            k = self.kinds[n]
            if v is _ABSENT:
                out.append(S_MISSING if k in (_Kind.STR, _Kind.ID) else F_MISSING)
            elif v is None:
                out.append(None)
            elif k == _Kind.NUM:
                out.append(number(v))
            elif k == _Kind.ID:
                out.append(_unicode(n, v) if isinstance(v, str) else
                           v if isinstance(v, int) and not isinstance(v, bool) else S_TYPE)
            elif k == _Kind.STR:
                out.append(_unicode(n, v) if isinstance(v, str) else
                           (iso_text(v) if n == self.time_field and isinstance(v, _dt.datetime)
                            else S_TYPE))
            else:
                out.append(v if isinstance(v, (bool, int, float, str)) else F_TYPE)
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
                try:
                    rows.append(self._row(r))
                except _BadValue as e:
                    bad.append(BadMessage(i, int(offsets[i]), MALFORMED, str(e)))
                    continue
                good.append(i)
        return self._finish(rows, good, bad, offsets, np.asarray(timestamps_ms, np.int64),
                            None, True)

    # -- columns ---------------------------------------------------------------------------
    def _arrays(self, rows: list[tuple]) -> dict[str, Any]:
        """Row tuples (struct order, sentinels) -> one array per field."""
        cols = list(zip(*rows)) if rows else [() for _ in self.fields]
        arrays: dict[str, Any] = {}
        for n, col in zip(self.fields, cols):
            k = self.kinds[n]
            arrays[n] = (pa.array(col, pa.float64()) if k == _Kind.NUM else
                         pa.array(col, pa.string()) if k == _Kind.STR else
                         id_column(col) if k == _Kind.ID else list(col))
        return arrays

    def _assemble(self, arrays: dict[str, Any], n: int, offsets, kafka_ts, idx, bad):
        """Per-field arrays (sentinel conventions) -> batch, bad list, field errors, absent."""
        return build(self, convert(self, arrays), n, offsets, kafka_ts, idx, bad, BadMessage)

    def _finish(self, rows, good, bad, offsets, ts, values, fallback) -> Decoded:
        n_in = len(offsets)
        good_idx = np.arange(n_in, dtype=np.int64) if good is None else np.asarray(good, np.int64)
        decoded = self._assemble(self._arrays(rows), len(good_idx), offsets[good_idx], ts[good_idx],
                                 good_idx, bad)
        samples = self._sample_keys(values, offsets, good_idx, decoded[1]) \
            if values is not None and self.sample_every else []
        return Decoded(batch=decoded[0], bad=sorted(decoded[1], key=lambda b: b.index),
                       field_errors=decoded[2], absent_fields=decoded[3], fallback=fallback,
                       samples=samples)

    def _sample_keys(self, values, offsets, good_idx, bad, odd_keys=None) -> list[Sample]:
        """One :data:`Sample` per good message whose offset is divisible by ``sample_every``
        (one message in ``sample_every`` is read in full for its top-level keys). Never
        raises; names are bounded (see :class:`~monitor.stage1.schema_names.NewFieldNames`).
        ``odd_keys`` (the compiled path's) marks the messages that may hold a new name: the
        others' keys were all looked up by the scan, so they have none and are not read
        again."""
        pick = good_idx[offsets[good_idx] % self.sample_every == 0]
        if pick.size == 0:
            return []
        dropped = {b.index for b in bad}
        of, known = self._new_names.of, self.known
        if odd_keys is None:
            odd_keys = np.ones(len(values), np.bool_)
        return [(i, int(offsets[i]), of(top_level_keys(values[i]), known) if odd else ())
                for i, odd in zip(pick.tolist(), odd_keys[pick].tolist()) if i not in dropped]

    # -- tables (replay, profile build; monitor/stage1/tables.py) ----------------------------
    def decode_table(self, table: pa.Table, offsets: np.ndarray | None = None,
                     timestamps_ms: np.ndarray | None = None, first_offset: int = 0) -> Decoded:
        """Decode an Arrow table (from Parquet or CSV): see :func:`.tables.decode_table`."""
        from monitor.stage1.tables import decode_table

        return decode_table(self, table, offsets, timestamps_ms, first_offset)


def decoder_for(cfg: MonitorConfig, profile: Any) -> "Decoder":
    """The decoder of ``cfg``'s fields, with the profile's categories, groups and fields."""
    cats = {name: list(profile.categories[name]) for name in cfg.features.categorical}
    fields = profile.metadata.get("fields") or ()
    return Decoder(cfg, cats, list(profile.groups), known_fields=tuple(fields))


def from_arrow(table: pa.Table, cfg: MonitorConfig, categories: dict[str, list[str]],
               groups: list[str], first_offset: int = 0) -> ColumnBatch:
    """The good rows of an Arrow table as a ColumnBatch (offsets are row numbers from
    ``first_offset``). Rows without a usable event time are left out; use
    :meth:`Decoder.decode_table` to see them and the field error counts."""
    return Decoder(cfg, categories, groups).decode_table(table, first_offset=first_offset).batch

