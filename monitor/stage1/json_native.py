"""The compiled JSON path: a batch's bytes -> :class:`~monitor.stage1.assemble.Converted`.

:func:`kernels.json_scan.scan` reads every message once and writes the configured fields'
tokens; this module turns them into the same columns :func:`~monitor.stage1.assemble.convert`
makes of msgspec's output, with whole-array operations:

- numbers: the scan's exact fast path, and one correctly rounded Arrow cast (fast_float) for
  the numbers it listed (17-digit mantissas, large exponents, subnormals ...): the value equals
  Python's ``float()`` of the text;
- strings: gathered into one Arrow array with the decoder's sentinels, then the same
  category lookup (``pc.index_in`` against the profile's values), ISO parsing and id hashing
  as every other path;
- outcomes: compared with the positive class or label as Python's ``==`` would.

A message the scan flags goes through the general path (:meth:`Decoder._classify_json`,
msgspec then orjson then the standard library), for that message only, and its row is put in
place; ``Decoded.fallback_messages`` counts them. So the result is the general decoder's,
message for message (the differential tests hold it).
"""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kernels.batch import (CAT_MISSING, CAT_NULL, CAT_TYPE_ERROR, CAT_UNSEEN, MISSING, NULL,
                           TYPE_ERROR, VALID)
from kernels.byte_words import PAD
from kernels.json_scan import (T_ABSENT, T_FALSE, T_FLOAT, T_INT, T_NULL, T_STR, T_TRUE,
                               FieldTable, scan)
from kernels.json_values import (ValueTable, gather, number_columns, span_codes, span_equals,
                                  span_hashes)
from monitor.stage1.assemble import Converted, convert, times_from_numbers
from monitor.stage1.columns import S_MISSING, S_TYPE, category_hash, iso_column

_SM, _ST = S_MISSING.encode(), S_TYPE.encode()
_PAD = bytes(PAD)
_NUM_STATE = np.full(8, TYPE_ERROR, np.int8)  # token kind -> state of a number field
_NUM_STATE[[T_INT, T_FLOAT]] = VALID
_NUM_STATE[T_ABSENT] = MISSING
_NUM_STATE[T_NULL] = NULL


class NativeJson:
    """The compiled path for one decoder (``dec``: its fields, kinds and value sets)."""

    def __init__(self, dec: Any) -> None:
        self.dec = dec
        self.fields = list(dec.fields)
        self.index = {f: j for j, f in enumerate(self.fields)}
        self.table = FieldTable([f.encode("utf-8", "surrogatepass") for f in self.fields],
                                tuple(k.encode("utf-8", "surrogatepass") for k in dec.known))
        self.values = {f: ValueTable([v.encode("utf-8", "surrogatepass") for v in vals])
                       for f, vals in dec.categories.items()}
        self._local = threading.local()
        self.groups = ValueTable([g.encode("utf-8", "surrogatepass") for g in dec.groups])

    # -- the batch ---------------------------------------------------------------------------
    def buffer(self, values: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bytes, N+1 starts, tombstone mask) of a batch of values."""
        n = len(values)
        skip = np.zeros(n, np.bool_)
        if None in values:
            skip = np.fromiter((v is None for v in values), np.bool_, n)
            values = [b"" if v is None else v for v in values]
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(np.fromiter(map(len, values), np.int64, n), out=starts[1:])
        return self._join(values), starts, skip

    def _join(self, values: list) -> np.ndarray:
        """The values one after the other, then PAD zero bytes (the scan reads words), in a
        buffer kept from batch to batch (one per thread): a fresh 6 MB ``bytes`` per batch
        costs as much again in page faults as the copy itself (bench_decode)."""
        out = getattr(self._local, "io", None)
        try:
            if out is None:
                raise BufferError
            out.seek(0)
            out.writelines(values)
        except BufferError:  # first use, or an array of the last batch still holds it
            out = self._local.io = io.BytesIO()
            out.writelines(values)
        out.write(_PAD)
        return np.frombuffer(out.getbuffer(), np.uint8, out.tell())

    def convert(self, values: list) -> tuple[Converted, np.ndarray, np.ndarray]:
        """Columns of every message, the messages left to the general path, and the
        messages whose keys must be read for new field names (those left, and those with a
        key the decoder does not know)."""
        buf, starts, skip = self.buffer(values)
        s = scan(buf, starts, skip, self.table)
        fb = s.fallback
        if s.slow_field.size:
            fb |= self._slow_numbers(buf, s)
        d = self.dec
        c = Converted()
        cfg, p = d.cfg, d.cfg.prediction
        nums = list(cfg.features.numeric) + ([p.score] if p.score else [])
        numeric_time = d.time_field is not None and d.time_unit != "iso8601"
        v, state = self._numbers(s, nums + ([d.time_field] if numeric_time else []))
        for r, f in enumerate(nums):
            c.num[f] = (v[r], state[r])
        for f in cfg.features.categorical:
            c.cat[f] = self._categories(buf, s, f)
        for f, pos in ((p.class_, p.positive_class), (p.label, p.positive_label)):
            if f:
                c.outcome[f] = self._outcome(buf, s, f, pos)
                j = self.index[f]  # integers past 2**53: Python compares them exactly
                fb |= (s.tok[j] == T_INT) & (np.abs(s.num[j]) > 2.0 ** 53)
        if cfg.sensitive:
            c.group = self._codes(buf, s, cfg.sensitive.attribute, self.groups)
        if d.time_field is not None:
            c.time = (iso_column(self._strings(buf, s, d.time_field))
                      if d.time_unit == "iso8601" else
                      times_from_numbers(v[-1], state[-1], d.time_unit))
        if d.id_field:
            c.ids, odd = self._ids(buf, s, d.id_field)
            fb |= odd
        return c, np.flatnonzero(fb), fb | s.unknown

    # -- per kind ----------------------------------------------------------------------------
    def _slow_numbers(self, buf, s) -> np.ndarray:
        """Correctly rounded values of the numbers the scan listed; messages whose number
        Arrow refuses (none expected: the scan checked the grammar) go the general path."""
        f, i = s.slow_field, s.slow_msg
        offs, data = gather(buf, s.a[f, i], s.b[f, i], np.zeros(f.size, np.int8), b"", b"")
        text = pa.StringArray.from_buffers(f.size, pa.py_buffer(offs), pa.py_buffer(data))
        bad = np.zeros(s.fallback.size, np.bool_)
        try:
            s.num[f, i] = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad[i] = True
        return bad

    def _numbers(self, s, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Values and states of number fields, all at once (rows in ``names`` order)."""
        rows = np.array([self.index[f] for f in names], np.int64)
        return number_columns(s.tok.T, s.num.T, rows, _NUM_STATE, VALID)

    def _strings(self, buf, s, name: str) -> pa.Array:
        """The field as an Arrow string array in the sentinel conventions of a text field."""
        j = self.index[name]
        t = s.tok[j]
        code = np.full(t.size, 2, np.int8)
        code[t == T_STR] = 0
        code[t == T_ABSENT] = 1
        code[t == T_NULL] = 3
        return _arrow(buf, s.a[j], s.b[j], code)

    def _codes(self, buf, s, name: str, table: ValueTable) -> np.ndarray:
        j = self.index[name]
        return span_codes(buf, s.a[j], s.b[j], s.tok[j], table, CAT_MISSING, CAT_NULL,
                          CAT_TYPE_ERROR, CAT_UNSEEN)

    def _categories(self, buf, s, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Codes against the profile's list, and the hash of each unseen value (computed once
        per distinct value), as ``category_codes`` gives them."""
        codes = self._codes(buf, s, name, self.values[name])
        hashes = np.zeros(codes.size, np.uint64)
        unseen = np.flatnonzero(codes == CAT_UNSEEN)
        if unseen.size:
            j = self.index[name]
            vals = _arrow(buf, s.a[j][unseen], s.b[j][unseen], np.zeros(unseen.size, np.int8))
            uniq = pc.unique(vals)
            h = np.array([category_hash(u) for u in uniq.to_pylist()], np.uint64)
            hashes[unseen] = h[pc.index_in(vals, value_set=uniq).to_numpy(zero_copy_only=False)]
        return codes, hashes

    def _ids(self, buf, s, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Id hashes as ``id_hashes`` computes them (integers hash their decimal text), and
        the messages whose integer id is written ``-0...`` (their text is not ``str(int)``)."""
        j = self.index[name]
        t = s.tok[j]
        valid = (t == T_STR) | ((t == T_INT) & (self.dec.kinds[name] == "id"))
        a, b = s.a[j], s.b[j]
        odd = (t == T_INT) & (buf[np.minimum(a, buf.size - 1)] == 45) & \
            (buf[np.minimum(a + 1, buf.size - 1)] == 48) if buf.size else np.zeros(t.size, bool)
        out = np.empty(t.size, np.uint64)
        span_hashes(buf, a, b, valid, out)
        return out, odd

    def _outcome(self, buf, s, name: str, positive) -> np.ndarray:
        """``outcome_raw`` codes: 1 equals ``positive`` (Python ``==``), 0 another scalar,
        2 absent, 3 null."""
        j = self.index[name]
        t = s.tok[j]
        raw = np.zeros(t.size, np.int8)
        if isinstance(positive, str):
            eq = np.zeros(t.size, np.bool_)
            span_equals(buf, s.a[j], s.b[j], np.frombuffer(positive.encode(), np.uint8), eq)
            raw[(t == T_STR) & eq] = 1
        else:
            x = float(positive)
            raw[((t == T_INT) | (t == T_FLOAT)) & (s.num[j] == x)] = 1
            raw[t == T_TRUE] = 1.0 == x
            raw[t == T_FALSE] = 0.0 == x
        raw[t == T_ABSENT] = 2
        raw[t == T_NULL] = 3
        return raw


def _arrow(buf, a, b, code) -> pa.Array:
    offs, data = gather(buf, a, b, code, _SM, _ST)
    nulls = code == 3
    n = code.size
    validity = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if nulls.any() else None
    return pa.StringArray.from_buffers(n, pa.py_buffer(offs), pa.py_buffer(data), validity,
                                       int(nulls.sum()))


def general_rows(dec: Any, values: list, offsets: np.ndarray, idx: np.ndarray):
    """The general path for messages ``idx``: (their Converted rows, the indices of the good
    ones, the bad ones with their indices in the whole batch)."""
    from dataclasses import replace

    sub = [values[i] for i in idx.tolist()]
    rows, good, bad = dec._classify_json(sub, offsets[idx], 0)
    bad = [replace(b, index=int(idx[b.index])) for b in bad]
    return convert(dec, dec._arrays(rows)), idx[np.asarray(good, np.int64)], bad
