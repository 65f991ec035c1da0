"""Model versions read from an event field (``model.version_field``): each version gets its
own windows, partials, reports and alert state.

- :class:`VersionReader` reads the field of a whole batch — one pass of the compiled JSON
  scanner (:func:`kernels.json_scan.scan`, the decoder's, with a table of this one field)
  over the batch's bytes, the messages it leaves (escapes, nesting, NaN ...) through msgspec,
  orjson or the standard library, message by message; or the column of an Arrow table — and
  encodes it once with Arrow (``dictionary_encode``): codes per event, the distinct names
  checked once each. Events
  without the field (or ``null``) are **missing_model_version**, events whose value is not a
  string, is empty, longer than :data:`MAX_LEN`, or holds ``/`` or a control character are
  **bad_model_version**: both are left out of the batch, counted and dead-lettered with that
  reason, and processing goes on.
- :func:`admit` bounds the versions a source partition keeps windows open for
  (``model.max_versions``): an event of a version new to the partition while that many have
  open windows is **too_many_model_versions** (dead-lettered, counted in the window as a bad
  message). Versions are admitted per batch in the order they first appear; a version leaves
  the partition's set when its last window closed.
- :class:`VersionedBatch` is a ColumnBatch with each event's version: ``PartitionWindows``
  sketches each version's rows in its own sub-window.
- :func:`partial_messages` turns a closed :class:`~monitor.stage1.windows.Partial` into the
  messages stage 2 merges: one per version (``model_version``, key ``p:start@version``). The
  window's counters that belong to no one version (late events, bad messages, duplicates,
  schema samples) ride with the partition's version of most events in that window (ties: the
  first name); a window of this partition without events sends one version-less partial
  with them, which stage 2 folds into the window's version of most events.

>>> import pyarrow as pa
>>> r = VersionReader("mv")
>>> codes, names, bad = r.from_json([b'{"mv": "v2", "x": 1}', b'{"x": 2}', b'{"mv": 3}',
...                                  b'{"mv": "v1"}', b'{"mv": "v2"}'])
>>> codes.tolist(), names, bad
([0, -1, -1, 1, 0], ['v2', 'v1'], [(1, 'missing_model_version'), (2, 'bad_model_version')])
>>> admit(np.array([0, 1, 0]), ["v2", "v1"], live={"v0"}, max_versions=2).tolist()
[False, True, False]
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa

from kernels.byte_words import PAD
from kernels.json_scan import T_ABSENT, T_NULL, T_STR, FieldTable, scan
from kernels.json_values import gather
from monitor.stage1.decoded import BadMessage
from monitor.stage1.partials import PartialMessage

MISSING_VERSION = "missing_model_version"
BAD_VERSION = "bad_model_version"
TOO_MANY_VERSIONS = "too_many_model_versions"
REASONS = (MISSING_VERSION, BAD_VERSION, TOO_MANY_VERSIONS)
MAX_LEN = 100


def usable(name: Any) -> bool:
    """A version name that can go into alert keys and trigger keys."""
    return (isinstance(name, str) and 0 < len(name) <= MAX_LEN and "/" not in name
            and name.isprintable())


class VersionReader:
    """Reads ``field`` from a batch: ``(codes, names, bad)`` where ``codes[i]`` indexes
    ``names`` (-1 for a bad event) and ``bad`` lists ``(index, reason)``."""

    def __init__(self, field: str) -> None:
        self.field = field
        one = msgspec.defstruct("Version", [("v", Any, None)], rename={"v": field})
        self._one = msgspec.json.Decoder(one)
        self._table = FieldTable([field.encode()])
        self._local = threading.local()

    def from_json(self, values: list[bytes]) -> tuple[np.ndarray, list[str], list[tuple[int, str]]]:
        n = len(values)
        if not n:
            return self.encode([])
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(np.fromiter(map(len, values), np.int64, n), out=starts[1:])
        buf = self._join(values)
        s = scan(buf, starts, np.zeros(n, np.bool_), self._table)
        tok, a, b = s.tok[0], s.a[0], s.b[0]
        is_str = (tok == T_STR) & ~s.fallback
        code = np.where(is_str, 0, 3).astype(np.int8)  # 3: null
        offs, data = gather(buf, a, b, code, b"", b"")
        arr = pa.StringArray.from_buffers(
            n, pa.py_buffer(offs), pa.py_buffer(data),
            pa.py_buffer(np.packbits(is_str, bitorder="little")), int(n - is_str.sum()))
        nonstr = (tok != T_STR) & (tok != T_ABSENT) & (tok != T_NULL) & ~s.fallback
        fb = np.flatnonzero(s.fallback)
        if fb.size:  # the bad path: message by message
            slow = [self._read_one(values[i]) for i in fb.tolist()]
            vals: list[Any] = arr.to_pylist()
            for i in np.flatnonzero(nonstr).tolist():
                vals[i] = False  # a value, not a string: bad_model_version
            for i, v in zip(fb.tolist(), slow):
                vals[i] = v
            return self.encode(vals)
        return self.encode(arr, nonstr)

    def _join(self, values: list[bytes]) -> np.ndarray:
        """The values one after the other and the scan's PAD zero bytes, in a buffer kept
        from batch to batch (one per thread), as the decoder does (no 6 MB copy per batch,
        no page faults)."""
        out = getattr(self._local, "io", None)
        try:
            if out is None:
                raise BufferError
            out.seek(0)
            out.writelines(values)
        except BufferError:  # first use, or a view of the last batch still holds it
            out = self._local.io = io.BytesIO()
            out.writelines(values)
        out.write(bytes(PAD))
        return np.frombuffer(out.getbuffer(), np.uint8, out.tell())

    def _read_one(self, value: bytes) -> Any:
        try:
            return getattr(self._one.decode(value), "v")
        except (msgspec.DecodeError, TypeError):
            pass
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            try:  # NaN, Infinity, 1e400: read by the decoder's last resort too
                obj = json.loads(value)
            except (ValueError, RecursionError):
                return None
        return obj.get(self.field) if isinstance(obj, dict) else None

    def from_table(self, table: pa.Table) -> tuple[np.ndarray, list[str], list[tuple[int, str]]]:
        if self.field not in table.column_names:
            return self.encode([None] * table.num_rows)
        col = table.column(self.field)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            return self.encode(col.combine_chunks())
        if pa.types.is_null(col.type):
            return self.encode([None] * table.num_rows)
        return self.encode(col.to_pylist())  # not strings: each value is bad (or missing)

    @staticmethod
    def encode(values: Any, nonstr: np.ndarray | None = None
               ) -> tuple[np.ndarray, list[str], list[tuple[int, str]]]:
        """Codes per event: one Arrow pass when every value is a string or null (``nonstr``:
        the nulls that stand for a value of another type)."""
        try:
            arr = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arr = pa.array([v if isinstance(v, str) else None for v in values], pa.string())
            nonstr = np.array([not (v is None or isinstance(v, str)) for v in values], bool)
        enc = arr.dictionary_encode()
        idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        missing = idx < 0
        if nonstr is not None:
            missing &= ~nonstr
        dictionary = enc.dictionary.to_pylist()
        ok = np.array([usable(d) for d in dictionary] + [False], bool)
        names: list[str] = []
        remap = np.full(len(dictionary) + 1, -1, np.int64)
        for i, d in enumerate(dictionary):
            if ok[i]:
                remap[i] = len(names)
                names.append(d)
        codes = remap[idx]  # -1 (null) indexes the trailing -1
        bad_idx = np.flatnonzero(codes < 0)
        bad = [(int(i), MISSING_VERSION if missing[i] else BAD_VERSION)
               for i in bad_idx.tolist()]  # the bad path: one entry per bad event
        return codes, names, bad


def admit(codes: np.ndarray, names: list[str], live: set[str], max_versions: int
          ) -> np.ndarray:
    """Which events to refuse: those of versions new to the partition once ``live`` plus the
    versions admitted in this batch (in order of first appearance) reach ``max_versions``."""
    refuse = np.zeros(codes.size, bool)
    if not codes.size:
        return refuse
    uniq, first = np.unique(codes, return_index=True)
    room = max_versions - len(live)
    for c in uniq[np.argsort(first, kind="stable")].tolist():
        if names[c] in live:
            continue
        if room > 0:
            room -= 1
        else:
            refuse |= codes == c
    return refuse


class VersionGate:
    """Stage 1's use of the version field: ``read`` a decoded JSON batch, then per partition
    ``admit`` its events (:class:`BatchVersions`)."""

    def __init__(self, field: str, max_versions: int) -> None:
        self.reader, self.max_versions = VersionReader(field), max_versions

    def read(self, dec: Any, values: list[bytes] | pa.Table, offsets: np.ndarray,
             good_mask: np.ndarray | None = None) -> tuple[Any, np.ndarray, "BatchVersions"]:
        """Each good event's version (``dec``: the Decoded of JSON ``values`` or of an Arrow
        table; ``good_mask`` over the messages, default: all but ``dec.bad``): events without
        a usable one leave the batch as bad messages. Returns the new Decoded and mask and
        the versions of the events kept."""
        n = values.num_rows if isinstance(values, pa.Table) else len(values)
        if good_mask is None:
            good_mask = np.ones(n, bool)
            good_mask[[b.index for b in dec.bad]] = False
        good_idx = np.flatnonzero(good_mask)
        if isinstance(values, pa.Table):
            codes, names, bad = self.reader.from_table(
                values if good_idx.size == n else values.take(pa.array(good_idx)))
        else:
            codes, names, bad = self.reader.from_json(
                values if good_idx.size == n else [values[i] for i in good_idx])
        if bad:
            rows = np.array([r for r, _ in bad], np.int64)
            extra = [BadMessage(int(good_idx[r]), int(offsets[good_idx[r]]), reason,
                                f"model.version_field {self.reader.field!r}: {reason}")
                     for r, reason in bad]
            keep = np.ones(codes.size, bool)
            keep[rows] = False
            good_mask = good_mask.copy()
            good_mask[good_idx[rows]] = False
            dec = replace(dec, batch=dec.batch.take(np.flatnonzero(keep)),
                          bad=sorted([*dec.bad, *extra], key=lambda b: b.index))
            codes, good_idx = codes[keep], good_idx[keep]
        return dec, good_mask, BatchVersions(codes, names, good_idx, offsets,
                                             self.max_versions)


class BatchVersions:
    """The versions of one batch's good events (``codes`` into ``names``; ``index``: each
    good event's message index)."""

    def __init__(self, codes: np.ndarray, names: list[str], index: np.ndarray,
                 offsets: np.ndarray, max_versions: int) -> None:
        self.codes, self.names, self.index, self.offsets = codes, names, index, offsets
        self.max_versions = max_versions
        self._refused = np.zeros(codes.size, bool)

    def admit(self, pw: Any, sel: np.ndarray) -> list[BadMessage]:
        """:func:`admit` for the good events ``sel`` of one partition (``pw``): the refused
        ones as BadMessages (``too_many_model_versions``); :meth:`admitted` the rest."""
        refuse = admit(self.codes[sel], self.names, live_versions(pw), self.max_versions)
        self._refused[sel] = refuse
        return [BadMessage(int(i), int(self.offsets[i]), TOO_MANY_VERSIONS,
                           f"more than model.max_versions={self.max_versions} model versions "
                           "with open windows") for i in self.index[sel[refuse]].tolist()]

    def admitted(self, sel: np.ndarray) -> np.ndarray:
        kept: np.ndarray = sel[~self._refused[sel]]
        return kept

    def batch(self, sub: Any, sel: np.ndarray) -> "VersionedBatch":
        """``sub`` (the rows ``sel`` of the good events) with their versions."""
        return VersionedBatch(sub, self.codes[sel], self.names)


def live_versions(pw: Any) -> set[str]:
    """The versions with an open window in ``pw`` (a PartitionWindows)."""
    return {name for w in pw.windows.values() for name in (w.versions or ())}


class VersionedBatch:
    """A ColumnBatch whose events each name a model version (``codes`` into ``names``)."""

    def __init__(self, batch: Any, codes: np.ndarray, names: list[str]) -> None:
        self.batch, self.codes, self.names = batch, codes, names

    def take(self, index: np.ndarray) -> "VersionedBatch":
        return VersionedBatch(self.batch.take(index), self.codes[index], self.names)

    def by_version(self, rows: np.ndarray) -> Iterator[tuple[str, Any]]:
        """``(version, ColumnBatch of its rows)`` in name order."""
        codes = self.codes[rows]
        for c in sorted(np.unique(codes).tolist(), key=lambda c: self.names[c]):
            yield self.names[c], self.batch.take(rows[codes == c])

    def __getattr__(self, name: str) -> Any:  # offset, event_time_ms, event_id_hash, ...
        return getattr(self.batch, name)


def partial_messages(c: Any, *, monitor: str, partition: int, n_partitions: int,
                     profile_id: str, counts: dict[str, int] | None = None
                     ) -> list[PartialMessage]:
    """The messages of one closed Partial ``c`` (see the module docstring)."""
    common = dict(kind="partial", monitor=monitor, partition=partition,
                  n_partitions=n_partitions, watermark_ms=c.watermark_ms,
                  next_offset=c.next_offset, window_start_ms=c.window_start_ms,
                  window_end_ms=c.window_end_ms, profile_id=profile_id)
    extra = {**c.counts, **(counts or {})}
    if not c.versions:
        return [PartialMessage(**common, events=c.events, late_events=c.late_events,
                               bad=c.bad, counts=extra,
                               sketch=c.sketch.to_bytes() if c.sketch is not None else None)]
    lead = min(c.versions, key=lambda k: (-c.versions[k][0], k))
    out = []
    for name, (events, sketch) in c.versions.items():
        mine = name == lead
        out.append(PartialMessage(
            **common, events=events, late_events=c.late_events if mine else 0,
            bad=c.bad if mine else {}, counts=extra if mine else {},
            sketch=sketch.to_bytes() if sketch is not None else None, model_version=name))
    return out
