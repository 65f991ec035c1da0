"""Exact sums in fixed point: the digits behind :class:`kernels.numeric.NumericSketch`'s
Σx and Σx² (and :mod:`kernels.performance`'s). A sum is an int64 row of base 2**32 digits in
units of 2**-unit; :func:`_add_at` adds an integer times a power of two, :func:`_add_value`
one double's x and x² straight from its bits, :func:`_exact_sum` an array of doubles by
error-free extraction level by level (see :mod:`kernels.numeric`'s docstring), and
:func:`_carry_row` brings a row to its canonical form (digits 0..D-2 in [0, 2**32), the top
digit signed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
from numba.core import types
from numba.extending import intrinsic

from kernels.grid import MAG, float_bits, float_from_bits
from kernels.jit import Numba, Scalar, inline, kernel

M = 11  # headroom bits of an extraction level (sums of < 2**M terms are exact)
FRAC = (1 << 52) - 1
M32 = 0xFFFFFFFF
M26 = (1 << 26) - 1


@intrinsic
def _fma_intrinsic(typingctx: Numba, a: Numba, b: Numba, c: Numba) -> tuple[Numba, Numba]:
    """a·b + c with one rounding (llvm.fma; vectorizes)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: Numba, builder: Numba, signature: Numba, args: Numba) -> Numba:
        return builder.fma(*args)

    return sig, codegen


#: numba hands an intrinsic its typing context first; kernels call it with the values only
_fma = cast("Callable[[float, float, float], float]", _fma_intrinsic)


@kernel
def _carry(acc: np.ndarray) -> None:
    """Propagate carries: digits 0..D-2 in [0, 2**32), the top digit signed."""
    for f in range(acc.shape[0]):
        _carry_row(acc, f)


@inline
def _carry_row(acc: np.ndarray, f: Scalar) -> None:
    for i in range(acc.shape[1] - 1):
        c = acc[f, i] >> 32
        acc[f, i] -= c << 32
        acc[f, i + 1] += c


@kernel
def _add_at(s: np.ndarray, f: Scalar, v: Scalar, k: Scalar) -> None:
    """s[f] += v · 2**k (v any int64 below 2**62 in size; digits of 32 bits)."""
    w = k >> 5
    sh = k & 31
    lo = (v & M32) << sh
    hi = (v >> 32) << sh
    s[f, w] += lo & M32
    s[f, w + 1] += (lo >> 32) + (hi & M32)
    s[f, w + 2] += hi >> 32


@kernel
def _add_value(s1: np.ndarray, s2: np.ndarray, f: Scalar, x: Scalar) -> None:
    """Σx and Σx² of one finite value straight into the digits (any exponent)."""
    xb = float_bits(x)
    e = (xb >> 52) & 0x7FF
    m = xb & FRAC
    if e == 0:
        e = 1
    else:
        m |= 1 << 52
    p = e - 1  # x = ±m·2**(p - 1074)
    _add_at(s1, f, -m if xb < 0 else m, p)
    a = m >> 26
    b = m & M26
    _add_at(s2, f, a * a, 2 * p + 52)
    _add_at(s2, f, 2 * a * b, 2 * p + 26)
    _add_at(s2, f, b * b, 2 * p)


@inline
def _level(a: np.ndarray, n: Scalar, k: Scalar) -> tuple[Scalar, Scalar]:
    """One extraction level over a[:n] with σ = 2**k (every |a[i]| < 2**(k-M)): a[i] keeps
    its residual; returns (Σ q·2**(53-k) as an exact int64, bits of the largest residual)."""
    sigma = float_from_bits(np.int64(k + 1023) << 52)
    scale = float_from_bits(np.int64(1076 - k) << 52)  # 2**(53-k)
    total = np.int64(0)
    top = 0
    for i in range(n):
        p = a[i]
        q = (sigma + p) - sigma
        r = p - q
        a[i] = r
        total += np.int64(q * scale)
        top = max(top, float_bits(r) & MAG)
    return total, top


@inline
def _exact_sum(a: np.ndarray, n: Scalar, top: Scalar, s: np.ndarray, f: Scalar, unit: Scalar) -> None:
    """Add Σ a[:n] (doubles with no bit below 2**-1022, |a| < 2**900, ``top`` the bits of
    the largest |a|) to the digits s[f] in units of 2**-unit; a is consumed."""
    while top != 0:
        k = (top >> 52) - 1022 + M  # |a| < 2**((top >> 52) - 1022)
        total, top = _level(a, n, k)
        if total != 0:
            _add_at(s, f, total, k - 53 + unit)
