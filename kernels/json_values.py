"""The value side of the compiled JSON path: token spans -> columns.

:func:`kernels.json_scan.scan` leaves, for every message and configured field, the byte span
of a string's content; these kernels turn spans into what the columns need, without Python
per event: :func:`gather` (Arrow-style offsets + bytes with the decoder's sentinels),
:func:`span_codes` (a category's index through a :class:`ValueTable`, the same hash and
probing as the scan's key table), :func:`span_equals` (an outcome compared with a class) and
:func:`span_hashes` (the event-id hash).

>>> import numpy as np
>>> buf = np.frombuffer(b"northsouthmars", np.uint8)
>>> a, b = np.array([0, 5, 10]), np.array([5, 10, 14])
>>> tok = np.full(3, 3, np.int8)
>>> span_codes(buf, a, b, tok, ValueTable([b"north", b"south"]), -1, -2, -3, -4).tolist()
[0, 1, -4]
"""

from __future__ import annotations

import numpy as np

from kernels.jit import Scalar, kernel
from kernels.json_scan import FieldTable, probe

def gather(buf: np.ndarray, a: np.ndarray, b: np.ndarray, code: np.ndarray,
           missing: bytes, type_error: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Arrow-style (int32 offsets, bytes) of N strings: span ``buf[a:b]`` where ``code`` is
    0, the bytes ``missing`` where 1, ``type_error`` where 2, empty where 3 (a null)."""
    m = np.frombuffer(missing, np.uint8)
    t = np.frombuffer(type_error, np.uint8)
    lens = np.where(code == 0, b - a, np.where(code == 1, m.size, np.where(code == 2, t.size, 0)))
    offs = np.zeros(code.shape[0] + 1, np.int64)
    np.cumsum(lens, out=offs[1:])
    data = np.empty(int(offs[-1]), np.uint8)
    _fill(buf, a, code, offs, data, m, t)
    return offs.astype(np.int32), data


@kernel
def _fill(buf: np.ndarray, a: np.ndarray, code: np.ndarray, offs: np.ndarray, data: np.ndarray,
          m: np.ndarray, t: np.ndarray) -> None:
    for i in range(code.shape[0]):
        o = offs[i]
        c = code[i]
        if c == 0:
            for q in range(offs[i + 1] - o):
                data[o + q] = buf[a[i] + q]
        elif c == 1:
            data[o:o + m.shape[0]] = m
        elif c == 2:
            data[o:o + t.shape[0]] = t


@kernel
def span_equals(buf: np.ndarray, a: np.ndarray, b: np.ndarray, word: np.ndarray,
                out: np.ndarray) -> None:
    """``out[i] = buf[a[i]:b[i]] == word``."""
    for i in range(a.shape[0]):
        n = b[i] - a[i]
        same = n == word.shape[0]
        if same:
            for q in range(n):
                if buf[a[i] + q] != word[q]:
                    same = False
                    break
        out[i] = same


class ValueTable:
    """A category list as an open-addressing hash table for :func:`span_codes` (the code of
    a value is its index in the list)."""

    def __init__(self, values: list[bytes]) -> None:
        self.fields = FieldTable(values)


def span_codes(buf: np.ndarray, a: np.ndarray, b: np.ndarray, tok: np.ndarray,
               table: ValueTable, missing: int, null: int, type_error: int,
               unseen: int) -> np.ndarray:
    """int32 codes of a text field's tokens: the value's index in the table, else
    ``unseen``; ``missing`` / ``null`` / ``type_error`` for an absent field, a JSON null and
    any token that is not a string."""
    out = np.empty(tok.shape[0], np.int32)
    t = table.fields
    _span_codes(buf, a, b, tok, t.hashes, t.slots, t.names, t.offsets, t.words, out,
                missing, null, type_error, unseen)
    return out


@kernel
def _span_codes(buf: np.ndarray, a: np.ndarray, b: np.ndarray, tok: np.ndarray,
                hashes: np.ndarray, slots: np.ndarray, names: np.ndarray, offs: np.ndarray,
                words: np.ndarray, out: np.ndarray, missing: Scalar, null: Scalar,
                type_error: Scalar, unseen: Scalar) -> None:
    for i in range(tok.shape[0]):
        t = tok[i]
        if t == 0:
            out[i] = missing
            continue
        if t == 6:
            out[i] = null
            continue
        if t != 3:
            out[i] = type_error
            continue
        ka, kb = a[i], b[i]
        n = kb - ka
        x0 = np.uint64(0)
        x1 = np.uint64(0)
        for q in range(min(n, 16)):
            if q < 8:
                x0 |= np.uint64(buf[ka + q]) << np.uint64(8 * q)
            else:
                x1 |= np.uint64(buf[ka + q]) << np.uint64(8 * q - 64)
        out[i] = probe(slots, hashes, words, offs, names, buf, ka, n, x0, x1, unseen)


@kernel
def span_hashes(buf: np.ndarray, a: np.ndarray, b: np.ndarray, valid: np.ndarray,
                out: np.ndarray) -> None:
    """The event-id hash of ``buf[a:b]`` where ``valid``, else 0: FNV-1a then the splitmix64
    finalizer, never 0 — :func:`kernels.dedup.hash_strings` on spans (tested equal)."""
    prime = np.uint64(0x100000001B3)
    for i in range(valid.shape[0]):
        if not valid[i]:
            out[i] = 0
            continue
        h = np.uint64(0xCBF29CE484222325)
        for j in range(a[i], b[i]):
            h = (h ^ np.uint64(buf[j])) * prime
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
        out[i] = h if h != np.uint64(0) else np.uint64(1)


def number_columns(tok: np.ndarray, num: np.ndarray, rows: np.ndarray, state_of: np.ndarray,
                   valid: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and states of the number fields ``rows`` of a scan's ``[N, F]`` token kinds
    and numbers: ``state[r, i] = state_of[tok[i, rows[r]]]``, the value where that state is
    ``valid``, else NaN (one pass over the scan's rows)."""
    n = tok.shape[0]
    v = np.empty((rows.shape[0], n), np.float64)
    state = np.empty((rows.shape[0], n), np.int8)
    _number_columns(tok, num, rows, state_of, valid, v, state)
    return v, state


@kernel
def _number_columns(tok: np.ndarray, num: np.ndarray, rows: np.ndarray, state_of: np.ndarray,
                    valid: Scalar, v: np.ndarray, state: np.ndarray) -> None:
    for i in range(tok.shape[0]):
        for r in range(rows.shape[0]):
            f = rows[r]
            st = state_of[tok[i, f]]
            state[r, i] = st
            v[r, i] = num[i, f] if st == valid else np.nan
