"""Byte format of sketches: a list of numpy arrays, each ``dtype, shape, raw little-endian``.

``pack_arrays(arrays)`` -> bytes; ``unpack_arrays(bytes)`` -> the same arrays (copies, so they
are writable). The format is fixed (a golden file in tests/golden guards it):

    b"SDK1" | u32 count | per array: u8 dtype-code, u8 ndim, u64 * ndim shape, raw data

>>> import numpy as np
>>> a = [np.arange(3, dtype=np.int64), np.ones((2, 2)), np.array([], np.uint64)]
>>> all((x == y).all() and x.dtype == y.dtype for x, y in zip(a, unpack_arrays(pack_arrays(a))))
True
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = b"SDK1"
DTYPES = [np.dtype(t).newbyteorder("<") for t in
          ("i1", "i4", "i8", "u8", "f8", "u1", "i2", "f4")]
CODE = {d.str: i for i, d in enumerate(DTYPES)}


def pack_arrays(arrays: list[np.ndarray]) -> bytes:
    parts = [MAGIC, struct.pack("<I", len(arrays))]
    for a in arrays:
        d = a.dtype.newbyteorder("<") if a.dtype.byteorder not in "<|" else a.dtype
        code = CODE[np.dtype(d.str.replace("|", "<")).str]
        parts.append(struct.pack("<BB", code, a.ndim))
        parts.append(struct.pack(f"<{a.ndim}Q", *a.shape))
        parts.append(np.ascontiguousarray(a, DTYPES[code]).tobytes())
    return b"".join(parts)


def unpack_arrays(b: bytes) -> list[np.ndarray]:
    if b[:4] != MAGIC:
        raise ValueError("not a streamdrift sketch (bad magic)")
    (n,) = struct.unpack_from("<I", b, 4)
    pos, out = 8, []
    for _ in range(n):
        code, ndim = struct.unpack_from("<BB", b, pos)
        pos += 2
        shape = struct.unpack_from(f"<{ndim}Q", b, pos)
        pos += 8 * ndim
        dt = DTYPES[code]
        size = int(np.prod(shape)) if ndim else 1
        out.append(np.frombuffer(b, dt, size, pos).reshape(shape).astype(dt.newbyteorder("="),
                                                                         copy=True))
        pos += size * dt.itemsize
    return out
