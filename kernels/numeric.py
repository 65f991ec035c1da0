"""Numeric sketch: counts on a grid of reference quantiles, exact counters, exact moments.

State of F features on a :class:`~kernels.grid.Grid` of B bins (all integers or min/max, so
the sketch is a function of the *multiset* of values it absorbed — the same bytes whatever
the batches, the split, the merge order):

- ``counts`` int64 [F, B+2]: bin 0 underflow (``x < edges[0]``), bins 1..B, bin B+1 overflow
  (``x >= edges[B]``); bin = ``searchsorted(edges, x, "right")``;
- ``icnt`` int64 [F, 6]: valid, missing, null, type error (decoder states), NaN, ±inf. Bad
  values are counted, never raised on; they stay out of the histogram and the moments;
- ``minmax`` float64 [F, 2] (-0.0 is stored as 0.0, so min/max do not depend on order);
- ``s1`` int64 [F, 68], ``s2`` int64 [F, 134]: Σx and Σx² *exactly*, as fixed-point integers
  (Σx in units of 2**-1074, Σx² in units of 2**-2148, base 2**32 digits). Every finite double
  is ±m·2**(p-1074) with m < 2**53, and m² splits into 26-bit pieces, so no bit is ever
  rounded away: mean and variance are the correctly rounded values of the exact mean and
  variance of the absorbed values, whatever the offset (1e9 + tiny noise is no harder than
  noise alone), and merging is integer addition — associative, commutative, bit for bit.
  (So there is no float merge order to document: any order gives the same bytes.)

Inside a kernel call the sums are first gathered per binary exponent in a scratch table
(six int64 per exponent, each piece below 2**29, so 2**28 values per call cannot overflow;
the wrapper splits bigger blocks), then folded into the digits and carried to a canonical
form: digits 0..D-2 in [0, 2**32), the top digit signed.

>>> import numpy as np
>>> from kernels.grid import Grid
>>> s = NumericSketch.empty(Grid.build(np.array([[0.0, 1.0, 2.0, 3.0]])))
>>> s = s.update(np.array([[-1.0, 0.5, 2.0, 3.0, np.nan, np.inf]]),
...              np.array([[0, 0, 0, 0, 0, 0]], np.int8))
>>> s.counts.tolist(), s.nan.tolist(), s.inf.tolist(), s.n.tolist(), s.mean.tolist()
([[1, 1, 0, 1, 1]], [1], [1], [4], [1.125])
"""

from __future__ import annotations

import threading
from fractions import Fraction

import numba as nb
import numpy as np

from kernels.grid import Grid, _guess, _settle, float_bits
from kernels.serial import pack_arrays, unpack_arrays

D1, D2 = 68, 134  # digits of Σx (2**-1074 units) and Σx² (2**-2148 units)
MAX_CALL = 1 << 28
FRAC = (1 << 52) - 1
EXP_MASK = 0x7FF << 52
M32 = 0xFFFFFFFF
M26 = (1 << 26) - 1
N_EXP = 2047  # binary exponents of finite doubles (subnormals share the first)
_SCRATCH = threading.local()  # per thread: the pending-sum table of _update (kept zero)


@nb.njit(nogil=True, cache=True)
def _carry(acc):
    """Propagate carries: digits 0..D-2 in [0, 2**32), the top digit signed."""
    for f in range(acc.shape[0]):
        for i in range(acc.shape[1] - 1):
            c = acc[f, i] >> 32
            acc[f, i] -= c << 32
            acc[f, i + 1] += c


@nb.njit(nogil=True, cache=True)
def _add_at(s, f, v, k):
    """s[f] += v · 2**k (v any int64 below 2**62 in size; digits of 32 bits)."""
    w = k >> 5
    sh = k & 31
    lo = (v & M32) << sh
    hi = (v >> 32) << sh
    s[f, w] += lo & M32
    s[f, w + 1] += (lo >> 32) + (hi & M32)
    s[f, w + 2] += hi >> 32


@nb.njit(nogil=True, cache=True)
def _fold(acc, f, pmin, pmax, s1, s2):
    """Move feature f's pending per-exponent sums into its digits; leave acc zero."""
    for p in range(pmin, pmax + 1):
        for k in range(6):
            v = acc[f, p, k]
            if v != 0:
                if k == 0:
                    _add_at(s1, f, v, p + 26)
                elif k == 1:
                    _add_at(s1, f, v, p)
                else:
                    _add_at(s2, f, v, 2 * p + 26 * (5 - k))
                acc[f, p, k] = 0


@nb.njit(nogil=True, cache=True)
def _update(values, state, center, k0, half, uedges, unext, root, node_lo, node_scale,
            node_off, node_n, cells, counts, icnt, minmax, s1, s2, acc):
    """values float64 [F, N]; state int8 [F, N]; the rest: see the module docstring.

    Per feature: one branch-free pass looks for bad values (state or NaN / inf); only a
    row that has some is sorted into counters and a compact copy of its finite values.
    Then the bin guesses of the whole row (independent, so they overlap), then the exact
    bins, counts and moments."""
    n_feat, n = values.shape
    good = np.empty(n, np.float64)
    guess = np.empty(n, np.int64)
    for f in range(n_feat):
        c0, kb, h, r0 = center[f], k0[f], half[f], root[f]
        ue = uedges[f]
        un = unext[f]
        cf = counts[f]
        af = acc[f]
        row = values[f]
        srow = state[f]
        bad = 0
        for i in range(n):
            bad += (srow[i] != 0) | ((float_bits(row[i]) & EXP_MASK) == EXP_MASK)
        if bad == 0:
            xs = row
        else:
            ng = 0
            for i in range(n):
                st = srow[i]
                if st != 0:
                    icnt[f, st if 0 < st < 4 else 3] += 1
                    continue
                x = row[i]
                xb = float_bits(x)
                if (xb & EXP_MASK) == EXP_MASK:
                    icnt[f, 4 if (xb & FRAC) != 0 else 5] += 1
                    continue
                good[ng] = x
                ng += 1
            xs = good[:ng]
        m_valid = xs.shape[0]
        mn = minmax[f, 0]
        mx = minmax[f, 1]
        for i in range(m_valid):
            x = xs[i]
            guess[i] = _guess(x, c0, kb, h, r0, cells, node_lo, node_scale, node_off, node_n,
                              ue)
            mn = min(mn, x + 0.0)  # -0.0 -> 0.0
            mx = max(mx, x + 0.0)
        pmin, pmax = 1 << 20, -1
        for i in range(m_valid):
            x = xs[i]
            cf[un[_settle(x, guess[i], ue)]] += 1
            # exact sums, pending per binary exponent p: x = ±m·2**(p - 1074), m < 2**53
            xb = float_bits(x)
            e = (xb >> 52) & 0x7FF
            m = xb & FRAC
            if e == 0:
                e = 1
            else:
                m |= 1 << 52
            p = e - 1
            sg = 1 - 2 * (xb >> 63 & 1)
            a = m >> 26
            b = m & M26
            aa = a * a
            ab = 2 * a * b
            bb = b * b
            af[p, 0] += sg * a
            af[p, 1] += sg * b
            af[p, 2] += aa >> 26
            af[p, 3] += (aa & M26) + (ab >> 26)
            af[p, 4] += (ab & M26) + (bb >> 26)
            af[p, 5] += bb & M26
            pmin = min(pmin, p)
            pmax = max(pmax, p)
        icnt[f, 0] += m_valid
        minmax[f, 0] = mn
        minmax[f, 1] = mx
        _fold(acc, f, pmin, pmax, s1, s2)


def _scratch(n_features: int) -> np.ndarray:
    """This thread's zeroed [F, N_EXP, 6] table (the kernel leaves it zero again)."""
    acc = getattr(_SCRATCH, "acc", None)
    if acc is None or acc.shape[0] < n_features:
        acc = _SCRATCH.acc = np.zeros((max(n_features, 1), N_EXP, 6), np.int64)
    return acc


def _big(row: np.ndarray) -> int:
    return sum(int(d) << (32 * i) for i, d in enumerate(row.tolist()))


class NumericSketch:
    """Histogram + counters + exact moments of F numeric features on one :class:`Grid`."""

    def __init__(self, grid: Grid, counts, icnt, minmax, s1, s2) -> None:
        self.grid = grid
        self.counts = counts
        self.icnt = icnt
        self.minmax = minmax
        self.s1 = s1
        self.s2 = s2

    @classmethod
    def empty(cls, grid: Grid) -> "NumericSketch":
        """A sketch that has seen nothing (the identity of :meth:`merge`).

        >>> NumericSketch.empty(Grid.build(np.zeros((2, 11)))).counts.shape
        (2, 12)
        """
        f, b1 = grid.edges.shape
        minmax = np.empty((f, 2))
        minmax[:, 0], minmax[:, 1] = np.inf, -np.inf
        return cls(grid, np.zeros((f, b1 + 1), np.int64), np.zeros((f, 6), np.int64), minmax,
                   np.zeros((f, D1), np.int64), np.zeros((f, D2), np.int64))

    def update(self, values: np.ndarray, state: np.ndarray) -> "NumericSketch":
        """Absorb a block ``values`` [F, N] (float32 is widened) with decoder ``state``
        [F, N] (int8, see :mod:`kernels.batch`); returns self.

        >>> s = NumericSketch.empty(Grid.build(np.array([[0.0, 1.0]])))
        >>> s.update(np.array([[0.5, 7.0]]), np.array([[0, 1]], np.int8)).missing.tolist()
        [1]
        """
        values = np.ascontiguousarray(values, np.float64)
        state = np.ascontiguousarray(state, np.int8)
        if values.shape != state.shape or values.shape[0] != self.counts.shape[0]:
            raise ValueError(f"values {values.shape} / state {state.shape} do not match "
                             f"{self.counts.shape[0]} features")
        acc = _scratch(values.shape[0])
        for lo in range(0, values.shape[1], MAX_CALL):
            hi = lo + MAX_CALL
            _update(values[:, lo:hi], state[:, lo:hi], *self.grid.tables, self.counts,
                    self.icnt, self.minmax, self.s1, self.s2, acc)
            _carry(self.s1)
            _carry(self.s2)
        return self

    def merge(self, other: "NumericSketch") -> "NumericSketch":
        """A new sketch holding both (exact integer sums: any order gives the same bytes).

        >>> g = Grid.build(np.array([[0.0, 1.0]]))
        >>> a = NumericSketch.empty(g).update(np.array([[0.2]]), np.zeros((1, 1), np.int8))
        >>> a.merge(NumericSketch.empty(g)).to_bytes() == a.to_bytes()
        True
        """
        s1, s2 = self.s1 + other.s1, self.s2 + other.s2
        _carry(s1)
        _carry(s2)
        minmax = np.stack([np.minimum(self.minmax[:, 0], other.minmax[:, 0]),
                           np.maximum(self.minmax[:, 1], other.minmax[:, 1])], axis=1)
        return NumericSketch(self.grid, self.counts + other.counts, self.icnt + other.icnt,
                             minmax, s1, s2)

    # counters and moments ------------------------------------------------------------
    n = property(lambda self: self.icnt[:, 0])
    missing = property(lambda self: self.icnt[:, 1])
    null = property(lambda self: self.icnt[:, 2])
    type_error = property(lambda self: self.icnt[:, 3])
    nan = property(lambda self: self.icnt[:, 4])
    inf = property(lambda self: self.icnt[:, 5])

    def exact_sums(self, f: int) -> tuple[Fraction, Fraction]:
        """Σx and Σx² of feature ``f``, exactly."""
        return (Fraction(_big(self.s1[f]), 1 << 1074), Fraction(_big(self.s2[f]), 1 << 2148))

    @property
    def mean(self) -> np.ndarray:
        """Mean of the valid values (correctly rounded); NaN when there are none."""
        out = np.full(self.counts.shape[0], np.nan)
        for f, n in enumerate(self.n.tolist()):
            if n > 0:
                out[f] = float(self.exact_sums(f)[0] / n)
        return out

    @property
    def variance(self) -> np.ndarray:
        """Sample variance (ddof=1), correctly rounded; NaN below two values."""
        out = np.full(self.counts.shape[0], np.nan)
        for f, n in enumerate(self.n.tolist()):
            if n > 1:
                s, q = self.exact_sums(f)
                out[f] = float((q - s * s / n) / (n - 1))
        return out

    @property
    def min(self) -> np.ndarray:
        return np.where(self.n > 0, self.minmax[:, 0], np.nan)

    @property
    def max(self) -> np.ndarray:
        return np.where(self.n > 0, self.minmax[:, 1], np.nan)

    # bytes ---------------------------------------------------------------------------
    def state_arrays(self) -> list[np.ndarray]:
        return [self.counts, self.icnt, self.minmax, self.s1, self.s2]

    def to_bytes(self) -> bytes:
        """The grid's edges and the state (see :mod:`kernels.serial`).

        >>> s = NumericSketch.empty(Grid.build(np.array([[0.0, 1.0]])))
        >>> NumericSketch.from_bytes(s.to_bytes()).to_bytes() == s.to_bytes()
        True
        """
        return pack_arrays([self.grid.edges, *self.state_arrays()])

    @classmethod
    def from_bytes(cls, b: bytes, grid: Grid | None = None) -> "NumericSketch":
        """Inverse of :meth:`to_bytes` (``grid`` reuses already built lookup tables)."""
        edges, *state = unpack_arrays(b)
        return cls(grid if grid is not None else Grid.build(edges), *state)
