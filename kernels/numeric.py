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
  is ±m·2**(p-1074) with m < 2**53, and x² is a multiple of 2**-2148, so no bit is ever
  rounded away: mean and variance are the correctly rounded values of the exact mean and
  variance of the absorbed values, whatever the offset (1e9 + tiny noise is no harder than
  noise alone), and merging is integer addition — associative, commutative, bit for bit.
  (So there is no float merge order to document: any order gives the same bytes.)

How the kernel is fast (about 5 ns per value on the bench's workload, one core), per feature
and chunk of ``CH`` events: one branch-free pass (vectorized) finds each value's root cell
(:func:`kernels.grid.root_cell`; a bad value — state != 0, NaN, ±inf — gets a cell that sends
it to the slow path, so nothing is compacted), splits x² and reduces min / max as
order-preserving integer keys of the bits; then one scalar pass counts the bins
(:func:`kernels.grid.cell_bin`: one cell and two edge loads, exact); the values it left (bad
ones, and child tables: :func:`kernels.grid.slow_bin`) are handled after; then the sums:

- ``x² = hi + lo`` exactly, ``hi = fl(x·x)``, ``lo = fma(x, x, -hi)``, for every value with
  ``2**-400 < |x| < 2**400`` (or 0); the rare others go to :func:`_add_value` (integer digits
  straight from the bits);
- the exact sum of each of the arrays x, hi, lo is taken level by level (Rump, Ogita and
  Oishi's error-free extraction, *Accurate floating-point summation*, SIAM J. Sci. Comput.
  2008): with ``σ = 2**k`` at least ``2**M`` times every ``|p|``, ``q = (σ + p) - σ`` and
  ``p - q`` are exact, every ``q`` is a multiple of ``2**(k-53)`` below ``2**(k-M)``, so
  ``Σ q·2**(53-k)`` is an exact int64 sum of at most ``CH < 2**M`` terms; it goes into the
  digits and the residuals ``p - q`` are the next level's input, until they are all zero (2 or
  3 levels on ordinary data). Each level is a plain loop LLVM vectorizes.

The digits are carried at the end of each feature's row, to a canonical form: digits 0..D-2
in [0, 2**32), the top digit signed.

>>> import numpy as np
>>> from kernels.grid import Grid
>>> s = NumericSketch.empty(Grid.build(np.array([[0.0, 1.0, 2.0, 3.0]])))
>>> s = s.update(np.array([[-1.0, 0.5, 2.0, 3.0, np.nan, np.inf]]),
...              np.array([[0, 0, 0, 0, 0, 0]], np.int8))
>>> s.counts.tolist(), s.nan.tolist(), s.inf.tolist(), s.n.tolist(), s.mean.tolist()
([[1, 1, 0, 1, 1]], [1], [1], [4], [1.125])
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from kernels.exact_sum import (  # noqa: F401  (_add_at: kernels.performance's too)
    FRAC, M, _add_at, _add_value, _carry, _carry_row, _exact_sum, _fma)
from kernels.grid import (MAG, Grid, cell_bin, float_bits, from_order_key,
                          root_cell, slow_bin)
from kernels.jit import Scalar, inline, kernel
from kernels.serial import pack_arrays, unpack_arrays

D1, D2 = 68, 134  # digits of Σx (2**-1074 units) and Σx² (2**-2148 units)
CH = 1024  # values per chunk: the scratch rows stay in L1, and CH < 2**M
MAX_CALL = 1 << 26  # values per feature and kernel call (bounds the digits between carries)
FAST_LO, FAST_HI = 1023 - 400, 1023 + 400  # biased exponents of the fast moments (exclusive)
EXP_MASK = 0x7FF << 52


@inline
def _prepare(row: np.ndarray, srow: np.ndarray, n: Scalar, c0: Scalar, kb: Scalar, hm1: Scalar,
             base: Scalar, bad_cell: Scalar, idx: np.ndarray, rx: np.ndarray, hi: np.ndarray,
             lo: np.ndarray) -> tuple[Scalar, ...]:
    """One branch-free pass (LLVM vectorizes it) over row[:n] with states srow[:n]:

    - idx[i] = the value's root cell (:func:`kernels.grid.root_cell`), or ``bad_cell``
      (whose entry sends it to the slow path) for a bad value (state != 0, NaN, ±inf);
    - rx, hi, lo [i] = x and x² = hi + lo exactly, for the valid values of the fast moments
      (``2**-400 < |x| < 2**400`` or 0), else 0.

    Returns the number of bad values, the bits of max |rx|, |hi|, |lo|, the number of valid
    values the fast moments left out, and the min / max keys of the valid values."""
    n_bad = 0
    tx = 0
    th = 0
    tl = 0
    out = 0
    kmin = MAG
    kmax = -MAG - 1
    for i in range(n):
        x = row[i]
        xb = float_bits(x)
        e = (xb >> 52) & 0x7FF
        valid = (srow[i] == 0) & (e != 0x7FF)
        n_bad += not valid
        idx[i] = root_cell(x, c0, kb, hm1, base) if valid else bad_cell
        ok = valid & (((e > FAST_LO) & (e < FAST_HI)) | (x == 0.0))
        out += valid & ~ok
        y = x if ok else 0.0
        h = y * y
        lo_ = _fma(y, y, -h)
        rx[i] = y
        hi[i] = h
        lo[i] = lo_
        tx = max(tx, float_bits(y) & MAG)
        th = max(th, float_bits(h) & MAG)
        tl = max(tl, float_bits(lo_) & MAG)
        key = xb ^ ((xb >> 63) & MAG)  # integer order = float order
        kmin = min(kmin, key if valid else MAG)
        kmax = max(kmax, key if valid else -MAG - 1)
    return n_bad, tx, th, tl, out, kmin, kmax


@inline
def _bins(row: np.ndarray, n: Scalar, idx: np.ndarray, ue: np.ndarray, un: np.ndarray,
          tied: Scalar, cells: np.ndarray, cf: np.ndarray, slow: np.ndarray) -> Scalar:
    """counts[bin(x)] += 1 where the root cell idx[i] tells the bin
    (:func:`kernels.grid.cell_bin`); the others' positions go to ``slow``; returns their
    number."""
    ns = 0
    if tied:
        for i in range(n):
            j = cell_bin(row[i], idx[i], cells, ue)
            if j < 0:
                slow[ns] = i
                ns += 1
            else:
                cf[un[j]] += 1
    else:
        for i in range(n):
            j = cell_bin(row[i], idx[i], cells, ue)
            if j < 0:
                slow[ns] = i
                ns += 1
            else:
                cf[j] += 1
    return ns


@kernel
def _update(values: np.ndarray, state: np.ndarray, center: np.ndarray, k0: np.ndarray,
            half: np.ndarray, root: np.ndarray, uedges: np.ndarray, unext: np.ndarray,
            tied: np.ndarray, node_lo: np.ndarray, node_scale: np.ndarray, node_off: np.ndarray,
            node_n: np.ndarray, cells: np.ndarray, counts: np.ndarray, icnt: np.ndarray,
            minmax: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> None:
    """values float64 [F, N]; state int8 [F, N]; the rest: see the module docstring.

    Per feature and chunk of CH events: one vectorized pass for the root cells (bad values
    get a cell that sends them to the slow path), x² = hi + lo and min / max; the bins; the
    few values the cells could not place (bad values counted, the others through the child
    tables); then the exact sums, level by level (vectorized)."""
    n_feat, n = values.shape
    idx = np.empty(CH, np.int64)
    rx = np.empty(CH)
    hi = np.empty(CH)
    lo = np.empty(CH)
    slow = np.empty(CH, np.int64)
    bad_cell = cells.shape[0] - 1
    for f in range(n_feat):
        c0, kb, h, r0, tf = center[f], k0[f], half[f], root[f], tied[f]
        ue = uedges[f]
        un = unext[f]
        cf = counts[f]
        kmin = MAG
        kmax = -MAG - 1
        for c in range(0, n, CH):
            m = min(CH, n - c)
            row = values[f, c:c + m]
            srow = state[f, c:c + m]
            n_bad, tx, th, tl, out, a, b = _prepare(row, srow, m, c0, kb, h - 1, r0 + h,
                                                    bad_cell, idx, rx, hi, lo)
            icnt[f, 0] += m - n_bad
            kmin = min(kmin, a)
            kmax = max(kmax, b)
            ns = _bins(row, m, idx, ue, un, tf, cells, cf, slow)
            for t in range(ns):
                i = slow[t]
                x = row[i]
                st = srow[i]
                xb = float_bits(x)
                if st != 0:
                    icnt[f, st if 0 < st < 4 else 3] += 1
                elif (xb & EXP_MASK) == EXP_MASK:
                    icnt[f, 4 if (xb & FRAC) != 0 else 5] += 1
                else:
                    cf[un[slow_bin(x, c0, kb, h, r0, cells, node_lo, node_scale, node_off,
                                   node_n, ue)]] += 1
            _exact_sum(rx, m, tx, s1, f, 1074)
            _exact_sum(hi, m, th, s2, f, 2148)
            _exact_sum(lo, m, tl, s2, f, 2148)
            if out:
                for i in range(m):
                    e = (float_bits(row[i]) >> 52) & 0x7FF
                    if srow[i] == 0 and e != 0x7FF and not (
                            ((e > FAST_LO) & (e < FAST_HI)) | (row[i] == 0.0)):
                        _add_value(s1, s2, f, row[i])
        if kmin <= kmax:  # keys back to floats; -0.0 is stored as 0.0
            minmax[f, 0] = min(minmax[f, 0], from_order_key(kmin) + 0.0)
            minmax[f, 1] = max(minmax[f, 1], from_order_key(kmax) + 0.0)
        _carry_row(s1, f)
        _carry_row(s2, f)


def _big(row: np.ndarray) -> int:
    return sum(int(d) << (32 * i) for i, d in enumerate(row.tolist()))


class NumericSketch:
    """Histogram + counters + exact moments of F numeric features on one :class:`Grid`."""

    def __init__(self, grid: Grid, counts: np.ndarray, icnt: np.ndarray, minmax: np.ndarray,
                  s1: np.ndarray, s2: np.ndarray) -> None:
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
        for lo in range(0, values.shape[1], MAX_CALL):
            hi = lo + MAX_CALL
            _update(values[:, lo:hi], state[:, lo:hi], *self.grid.tables, self.counts,
                    self.icnt, self.minmax, self.s1, self.s2)
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
        """Σx and Σx² of feature ``f``, exactly — also for the values the fast path leaves
        to :func:`_add_value` (subnormal, tiny, huge):

        >>> x = [5e-324, -2.0**-401, 1e-300, -0.0, 3.0, 1e300, -2.0**400, 1.7e308]
        >>> s = NumericSketch.empty(Grid.build(np.array([[0.0, 1.0]])))
        >>> s = s.update(np.array([x]), np.zeros((1, len(x)), np.int8))
        >>> s.exact_sums(0) == (sum(map(Fraction, x)), sum(Fraction(v) ** 2 for v in x))
        True
        """
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
