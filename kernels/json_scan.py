"""One compiled pass over a batch of flat JSON objects: the configured fields' tokens.

Input: the batch's bytes concatenated (``buf``) with ``starts`` (N+1 offsets; message i is
``buf[starts[i]:starts[i+1]]``) and a ``skip`` mask (tombstones). A lookup table maps key
bytes to the configured field index (open addressing on a hash of the key's length and end bytes, keys compared byte
for byte). For every message and configured field the scan writes:

- ``tok[i, f]``: the token kind (:data:`T_ABSENT`, :data:`T_INT`, :data:`T_FLOAT`,
  :data:`T_STR`, :data:`T_TRUE`, :data:`T_FALSE`, :data:`T_NULL`);
- ``num[i, f]``: a number's value when the exact fast path applies (Clinger: at most 19
  significant digits, mantissa <= 2**53, |decimal exponent| <= 22, so one correctly rounded
  multiplication or division by an exact power of ten); other numbers are listed in ``slow``
  (field, message) with their text span, for a correctly rounded conversion elsewhere;
- ``a[i, f]``, ``b[i, f]``: the byte span of a string's content or of a number's text.

A message the scan does not fully understand is flagged in ``fallback`` and left to the
general decoder: not an object, a nested array or object, any escape or non-ASCII byte in a
string or key, a configured field twice, NaN / Infinity, numbers with more than 800 digits or
a decimal exponent past 308, a byte-order mark, trailing bytes. The scan never uses a byte
outside a message and never raises: it compares keys and skips string bytes eight at a time
(:mod:`kernels.byte_words`), so the buffer ends in :data:`~kernels.byte_words.PAD` zero bytes
(:func:`scan` adds them to a copy when the caller did not). The outputs are written message
by message (``[N, F]`` arrays, handed out transposed as ``[F, N]`` views).

An integer token is an integer: ``-0`` is 0 (as every JSON parser that reads integers does).

>>> import numpy as np
>>> msgs = [b'{"a": 1.5, "b": "x", "c": true}', b'{"b": null, "a": -0}', b'[1]']
>>> buf = np.frombuffer(b"".join(msgs), np.uint8)
>>> starts = np.cumsum([0] + [len(m) for m in msgs])
>>> table = FieldTable([b"a", b"b"])
>>> out = scan(buf, starts, np.zeros(3, np.bool_), table)
>>> out.tok.tolist(), out.num[0].tolist()[:2], out.fallback.tolist()
([[2, 1, 0], [3, 6, 0]], [1.5, 0.0], [False, False, True])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.byte_words import PAD, first_special, same_bytes
from kernels.jit import Scalar, inline, kernel

T_ABSENT, T_INT, T_FLOAT, T_STR, T_TRUE, T_FALSE, T_NULL = 0, 1, 2, 3, 4, 5, 6
MAX_DIGITS = 800
_POW10 = np.array([10.0 ** k for k in range(23)])
# bytes that end or complicate a plain string: '"', '\\', controls, non-ASCII
_SPECIAL = np.zeros(256, np.bool_)
_SPECIAL[[34, 92] + list(range(32)) + list(range(128, 256))] = True


_K1, _K2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9
_M64 = 0xFFFFFFFFFFFFFFFF


def _words(b: bytes) -> tuple[int, int]:
    """A key's first 16 bytes as two little-endian words (zero padded)."""
    return int.from_bytes(b[:8], "little"), int.from_bytes(b[8:16], "little")


def _key_hash_py(b: bytes) -> int:
    """The scan's key hash in Python (for building the table): length and first 16 bytes,
    mixed. A hit is confirmed by the words and the bytes past 16."""
    x0, x1 = _words(b)
    h = (((len(b) * _K1) & _M64) ^ x0) * _K2 & _M64
    h = ((h ^ x1) * _K2) & _M64
    return h ^ (h >> 29)


class FieldTable:
    """The configured field names as an open-addressing hash table for :func:`scan`;
    ``known`` names are looked up too (a message with a key in neither list is flagged in
    ``Scan.unknown``) but not read."""

    def __init__(self, names: list[bytes], known: tuple[bytes, ...] = ()) -> None:
        self.n = len(names)
        names = list(names) + sorted(set(known) - set(names))
        size = 16
        while size < 4 * max(1, len(names)):
            size *= 2
        self.hashes = np.zeros(size, np.uint64)
        self.slots = np.full(size, -1, np.int32)
        for f, name in enumerate(names):
            h = _key_hash_py(name)
            j = h & (size - 1)
            while self.slots[j] >= 0:
                j = (j + 1) & (size - 1)
            self.hashes[j], self.slots[j] = h, f
        self.names = np.frombuffer(b"".join(names), np.uint8) if names else np.zeros(0, np.uint8)
        self.words = np.array([_words(n) for n in names] or np.zeros((0, 2)), np.uint64)
        self.offsets = np.cumsum([0] + [len(n) for n in names]).astype(np.int64)


@dataclass
class Scan:
    tok: np.ndarray  # int8 [F, N]
    num: np.ndarray  # float64 [F, N]
    a: np.ndarray  # int64 [F, N] span start
    b: np.ndarray  # int64 [F, N] span end
    fallback: np.ndarray  # bool [N]
    unknown: np.ndarray  # bool [N]: a key neither configured nor known (when not fallback)
    slow_field: np.ndarray  # int32 [S]
    slow_msg: np.ndarray  # int64 [S]


def scan(buf: np.ndarray, starts: np.ndarray, skip: np.ndarray, table: FieldTable) -> Scan:
    """Scan every message (see the module docstring)."""
    n, f = starts.shape[0] - 1, table.n
    tok = np.zeros((n, f), np.int8)
    num = np.zeros((n, f), np.float64)
    a = np.zeros((n, f), np.int64)
    b = np.zeros((n, f), np.int64)
    fb = np.zeros(n, np.bool_)
    unknown = np.zeros(n, np.bool_)
    slow = np.empty((2, max(1, f * n)), np.int64)
    end = int(starts[-1]) if n else 0
    if buf.shape[0] < end + PAD or buf[buf.shape[0] - PAD:].any():
        buf = padded(buf[:end])
    k = _scan(buf, np.ascontiguousarray(starts, np.int64), skip, table.hashes, table.slots,
              table.names, table.offsets, table.words, f, tok, num, a, b, fb, unknown, slow,
              _SPECIAL, _POW10)
    return Scan(tok.T, num.T, a.T, b.T, fb, unknown, slow[0, :k].astype(np.int32),
                slow[1, :k])


def padded(buf: np.ndarray) -> np.ndarray:
    """``buf`` followed by the :data:`~kernels.byte_words.PAD` zero bytes :func:`scan` reads
    words into (a copy; callers that join a batch add them while joining)."""
    out = np.zeros(buf.shape[0] + PAD, np.uint8)
    out[:buf.shape[0]] = buf
    return out


# One function, no calls: numba passes arrays to a call by reference-counted struct, which
# made a scanner built of small helpers five times slower than this straight loop.

@inline
def probe(slots: np.ndarray, hashes: np.ndarray, words: np.ndarray, offs: np.ndarray,
          names: np.ndarray, buf: np.ndarray, ka: Scalar, n: Scalar, x0: Scalar, x1: Scalar,
          absent: Scalar) -> Scalar:
    """The entry of the name ``buf[ka:ka+n]`` (first 16 bytes packed in ``x0``, ``x1``) in
    an open-addressing table (``slots`` of entry numbers, -1 empty, with their ``hashes``;
    entry g's bytes are ``names[offs[g]:offs[g+1]]``, its first 16 packed in ``words[g]``),
    or ``absent``. Linear probing; the table is at most half full, so it ends."""
    mask = hashes.shape[0] - 1
    h = ((np.uint64(n) * np.uint64(_K1)) ^ x0) * np.uint64(_K2)
    h = (h ^ x1) * np.uint64(_K2)
    h ^= h >> np.uint64(29)
    j = np.int64(h & np.uint64(mask))
    while slots[j] >= 0:
        g = slots[j]
        if hashes[j] == h and words[g, 0] == x0 and words[g, 1] == x1 \
                and offs[g + 1] - offs[g] == n:
            same = True
            for q in range(16, n):
                if names[offs[g] + q] != buf[ka + q]:
                    same = False
                    break
            if same:
                return g
        j = (j + 1) & mask
    return absent

@kernel
def _scan(buf: np.ndarray, starts: np.ndarray, skip: np.ndarray, hashes: np.ndarray,
          slots: np.ndarray, names: np.ndarray, offs: np.ndarray, words: np.ndarray,
          nf: Scalar, tok: np.ndarray, num: np.ndarray, a: np.ndarray, b: np.ndarray,
          fb: np.ndarray, unknown: np.ndarray, slow: np.ndarray, special: np.ndarray,
          pow10: np.ndarray) -> Scalar:
    k = 0
    prev_a = np.zeros(64, np.int64)  # per key position: the last key seen there
    prev_len = np.full(64, -1, np.int64)
    prev_f = np.full(64, -1, np.int64)
    two53 = np.uint64(9007199254740992)
    for i in range(starts.shape[0] - 1):
        if skip[i]:
            fb[i] = True
            continue
        p, end, k0, ok = starts[i], starts[i + 1], k, False
        while p < end and (buf[p] == 32 or buf[p] == 10 or buf[p] == 13 or buf[p] == 9):
            p += 1
        if p >= end or buf[p] != 123:
            fb[i] = True
            continue
        p += 1
        while p < end and (buf[p] == 32 or buf[p] == 10 or buf[p] == 13 or buf[p] == 9):
            p += 1
        first = True
        pos = 0
        while p < end:
            if first and buf[p] == 125:
                ok = True
                p += 1
                break
            first = False
            # -- the key: most producers write the same keys in the same order, so the key
            # at this position is first compared with the one at the same position of the
            # message before (bytes already checked there); else scanned and looked up
            if buf[p] != 34:
                break
            p += 1
            ka = p
            f = -1
            hit = False
            if pos < prev_len.shape[0] and prev_len[pos] >= 0:
                n = prev_len[pos]
                pa = prev_a[pos]
                if ka + n < end and buf[ka + n] == 34:
                    hit = same_bytes(buf, ka, pa, n)
                    if hit:
                        f = prev_f[pos]
                        p = ka + n + 1
            if not hit:
                x0 = np.uint64(0)
                x1 = np.uint64(0)
                while p < end and not special[buf[p]]:
                    q = p - ka
                    if q < 8:
                        x0 |= np.uint64(buf[p]) << np.uint64(8 * q)
                    elif q < 16:
                        x1 |= np.uint64(buf[p]) << np.uint64(8 * q - 64)
                    p += 1
                if p >= end or buf[p] != 34:
                    break
                kb = p
                p += 1
                n = kb - ka
                f = probe(slots, hashes, words, offs, names, buf, ka, n, x0, x1, -1)
                if pos < prev_len.shape[0]:
                    prev_a[pos], prev_len[pos], prev_f[pos] = ka, kb - ka, f
            pos += 1
            if f < 0:
                unknown[i] = True
            elif f >= nf:
                f = -1  # a known field this decoder does not read
            elif tok[i, f] != 0:
                break  # a configured field twice
            while p < end and (buf[p] == 32 or buf[p] == 10 or buf[p] == 13 or buf[p] == 9):
                p += 1
            if p >= end or buf[p] != 58:
                break
            p += 1
            while p < end and (buf[p] == 32 or buf[p] == 10 or buf[p] == 13 or buf[p] == 9):
                p += 1
            if p >= end:
                break
            # -- the value
            c = buf[p]
            va = p
            t = 0
            if c == 34:
                p += 1
                va = p
                p = first_special(buf, p)
                if p >= end or buf[p] != 34:
                    break
                vb = p
                p += 1
                t = 3
            elif c == 45 or (c >= 48 and c <= 57):
                # -- a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
                neg = c == 45
                if neg:
                    p += 1
                if p >= end or buf[p] < 48 or buf[p] > 57:
                    break
                m = np.uint64(0)
                sig = 0  # significant digits in m
                digits = 0
                e10 = 0
                if buf[p] == 48:
                    p += 1
                else:
                    while p < end and buf[p] >= 48 and buf[p] <= 57:
                        if sig < 19:
                            m = m * np.uint64(10) + np.uint64(buf[p] - 48)
                            sig += 1
                        else:
                            e10 += 1
                        digits += 1
                        p += 1
                t = 1
                if p < end and buf[p] == 46:
                    t = 2
                    p += 1
                    if p >= end or buf[p] < 48 or buf[p] > 57:
                        break
                    while p < end and buf[p] >= 48 and buf[p] <= 57:
                        if m == 0 and buf[p] == 48:
                            e10 -= 1  # leading zeros of a fraction
                        elif sig < 19:
                            m = m * np.uint64(10) + np.uint64(buf[p] - 48)
                            sig += 1
                            e10 -= 1
                        digits += 1
                        p += 1
                if p < end and (buf[p] == 101 or buf[p] == 69):
                    t = 2
                    p += 1
                    eneg = False
                    if p < end and (buf[p] == 43 or buf[p] == 45):
                        eneg = buf[p] == 45
                        p += 1
                    if p >= end or buf[p] < 48 or buf[p] > 57:
                        break
                    ex = 0
                    nd = 0
                    while p < end and buf[p] >= 48 and buf[p] <= 57:
                        ex = ex * 10 + (buf[p] - 48)
                        nd += 1
                        p += 1
                    if nd > 4:
                        break
                    e10 += -ex if eneg else ex
                if digits > MAX_DIGITS or (m != 0 and sig + e10 > 308):
                    break
                vb = p
                if f >= 0:
                    if t == 1 and m == 0:
                        num[i, f] = 0.0  # integer zero, "-0" included
                    elif not (digits > sig and sig == 19) and m <= two53 and e10 >= -22 \
                            and e10 <= 22:
                        v = float(m)
                        v = v * pow10[e10] if e10 >= 0 else v / pow10[-e10]
                        num[i, f] = -v if neg else v
                    else:
                        slow[0, k] = f
                        slow[1, k] = i
                        k += 1
            elif c == 116 and p + 4 <= end and buf[p + 1] == 114 and buf[p + 2] == 117 \
                    and buf[p + 3] == 101:
                p += 4
                t = 4
            elif c == 102 and p + 5 <= end and buf[p + 1] == 97 and buf[p + 2] == 108 \
                    and buf[p + 3] == 115 and buf[p + 4] == 101:
                p += 5
                t = 5
            elif c == 110 and p + 4 <= end and buf[p + 1] == 117 and buf[p + 2] == 108 \
                    and buf[p + 3] == 108:
                p += 4
                t = 6
            else:
                break  # nested, or not JSON
            if f >= 0:
                tok[i, f] = t
                if t <= 3:
                    a[i, f] = va
                    b[i, f] = vb
            while p < end and (buf[p] == 32 or buf[p] == 10 or buf[p] == 13 or buf[p] == 9):
                p += 1
            if p < end and buf[p] == 44:
                p += 1
                while p < end and (buf[p] == 32 or buf[p] == 10 or buf[p] == 13
                                   or buf[p] == 9):
                    p += 1
                continue
            if p < end and buf[p] == 125:
                ok = True
                p += 1
            break
        if ok:
            while p < end and (buf[p] == 32 or buf[p] == 10 or buf[p] == 13 or buf[p] == 9):
                p += 1
            ok = p == end
        if not ok:
            fb[i] = True
            k = k0  # forget its slow numbers
    return k
