"""Eight bytes at a time: unaligned little-endian word loads and the SWAR tests the JSON
scanner uses to skip plain string bytes and compare keys a word at a time.

A word load reads ``buf[p:p+8]``; the caller makes sure those bytes exist (the scanner's
buffer carries :data:`PAD` zero bytes after the last message).

>>> import numpy as np
>>> buf = np.frombuffer(b'abcdefgh"ij\\\\' + bytes(PAD), np.uint8)
>>> int(first_special(buf, 0)), int(first_special(buf, 9))
(8, 11)
>>> bool(same_bytes(buf, 0, 0, 11)), bool(same_bytes(buf, 0, 1, 3))
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from kernels.jit import Numba, Scalar, inline

PAD = 16  # zero bytes after a scanner buffer's last message: word loads stay inside it

_ONES = 0x0101010101010101
_HIGH = 0x8080808080808080
_QUOTE = 0x2222222222222222
_BACKSLASH = 0x5C5C5C5C5C5C5C5C
_SPACE = 0x2020202020202020


@intrinsic
def _load_word(typingctx: Numba, buf: Numba, p: Numba) -> tuple[Numba, Numba]:
    """``buf[p:p+8]`` as a little-endian uint64 (one unaligned load)."""
    sig = types.uint64(buf, types.int64)

    def codegen(context: Numba, builder: Numba, signature: Numba, args: Numba) -> Numba:
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        return builder.load(builder.bitcast(ptr, ir.IntType(64).as_pointer()), align=1)

    return sig, codegen


#: numba hands an intrinsic its typing context first; kernels call it with the values only
load_word = cast("Callable[[np.ndarray, Scalar], Scalar]", _load_word)
#: numba's count of trailing zero bits (an intrinsic too)
ctz = cast("Callable[[Scalar], Scalar]", trailing_zeros)


@inline
def special_mask(w: Scalar) -> Scalar:
    """High bit set in the lowest byte of ``w`` that is '"', '\\\\', a control byte (< 0x20) or
    non-ASCII (>= 0x80); bytes above the first such byte may be flagged too (borrows)."""
    ones, high = np.uint64(_ONES), np.uint64(_HIGH)
    x = w ^ np.uint64(_QUOTE)
    y = w ^ np.uint64(_BACKSLASH)
    return (((x - ones) & ~x) | ((y - ones) & ~y) | ((w - np.uint64(_SPACE)) & ~w) | w) & high


@inline
def first_special(buf: np.ndarray, p: Scalar) -> Scalar:
    """The position of the first byte at or after ``p`` that ends or complicates a plain
    string ('"', '\\\\', a control byte, non-ASCII); the padding's zeros end every search."""
    while True:
        t = special_mask(load_word(buf, p))
        if t != 0:
            return p + np.int64(ctz(t) >> 3)
        p += 8


@inline
def same_bytes(buf: np.ndarray, p: Scalar, q: Scalar, n: Scalar) -> Scalar:
    """``buf[p:p+n] == buf[q:q+n]``, a word at a time (both spans followed by 8 readable
    bytes)."""
    k = 0
    while k + 8 <= n:
        if load_word(buf, p + k) != load_word(buf, q + k):
            return False
        k += 8
    if k < n:
        m = (np.uint64(1) << np.uint64(8 * (n - k))) - np.uint64(1)
        return ((load_word(buf, p + k) ^ load_word(buf, q + k)) & m) == np.uint64(0)
    return True
