"""Bin grids of reference quantiles and the fast bin lookup the numeric kernel uses.

A grid of F features has ``edges`` float64 [F, B+1] (non-decreasing, finite). Value ``x`` falls
in bin ``searchsorted(edges[f], x, side="right")``: 0 is underflow (``x < edges[0]``),
``k`` in 1..B holds ``edges[k-1] <= x < edges[k]``, ``B+1`` is overflow (``x >= edges[B]``).

The lookup must cost a few nanoseconds whatever the data: a binary search over 1000 edges
does not (about 10 dependent, mispredicted steps), and one uniform table over the grid's range
is far too coarse in the bulk of a heavy-tailed feature. :class:`Grid` builds, per feature:

- the *unique* edges (between a -inf and a +inf sentinel) and, for each, the bin that follows
  it (``searchsorted(edges, u[j], "right")``) — tied edges (discrete data) cost nothing;
- a root table on a *symmetric log scale* around a center: the cell of ``x`` is read
  straight off the bits of ``x - center`` (exponent and top 8 mantissa bits: 256 cells per
  octave of distance, each side), so normal, lognormal, Cauchy-like tails and huge offsets
  (1e9 + noise) all get cells about as fine as their bins. The center is the candidate
  (median edge, 0, first edge, last edge) that leaves the fewest edges in root cells holding
  more than ``MAX_SCAN`` (positive skewed data such as lognormal crowds its bins near 0,
  where a log scale around the median is too coarse and one around 0 is just right);
- for a root cell that still holds more than ``MAX_SCAN`` edges, a child table of uniform
  cells over just that cell (up to ``MAX_DEPTH`` levels).

The root cell of ``x`` is a monotone function of ``x`` (a rounded subtraction, then bits), so
its exact bounds are known: the smallest double of each cell is found at build time with the
kernel's own :func:`root_cell` (:func:`_exact_starts`). A root cell then holds ``j``, the
last edge at or below its start, and at most ``MAX_SCAN`` = 2 edges in (start, end], so the
fast path (:func:`fast_bin`) is exact with one cell and two independent edge loads:
``j + (ue[j+1] <= x) + (ue[j+2] <= x)``. A crowded cell points to a child table instead, and
the caller takes the slow path (:func:`slow_bin`: the child tables, two steps, then
:func:`_settle` walks to the exact edge, whatever rounding the child arithmetic does). Either
way the result is exactly ``searchsorted`` for every finite value. ``uedges`` carries
``PAD`` extra ``+inf`` columns after the last edge.

>>> import numpy as np
>>> g = Grid.build(np.array([[0.0, 1.0, 1.0, 2.0, 4.0]]))
>>> x = np.array([[-1.0, 0.0, 0.5, 1.0, 3.9, 4.0, 5.0]])
>>> g.lookup(x)[0].tolist() == np.searchsorted(g.edges[0], x[0], "right").tolist()
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numba.core import types
from numba.extending import intrinsic

from kernels.jit import Numba, Scalar, inline, kernel

LUT_FACTOR = 4
MAX_SCAN = 2
PAD = 2  # +inf columns after the last unique edge (fast_bin reads ue[j + 2])
MAX_DEPTH = 8
SHIFT = 44  # 2**(52 - 44) = 256 root cells per octave of |x - center|
MAG = 0x7FFFFFFFFFFFFFFF
MAX_OCTAVES = 64


@intrinsic
def _float_bits(typingctx: Numba, x: Numba) -> tuple[Numba, Numba]:
    """The IEEE-754 bits of a float64 as an int64 (a free bit cast inside numba)."""
    sig = types.int64(types.float64)

    def codegen(context: Numba, builder: Numba, signature: Numba, args: Numba) -> Numba:
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return sig, codegen


@intrinsic
def _float_from_bits(typingctx: Numba, k: Numba) -> tuple[Numba, Numba]:
    """The float64 whose IEEE-754 bits are the int64 ``k``."""
    sig = types.float64(types.int64)

    def codegen(context: Numba, builder: Numba, signature: Numba, args: Numba) -> Numba:
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


#: numba hands an intrinsic its typing context first; kernels call these with the value only
float_bits = cast("Callable[[Scalar], Scalar]", _float_bits)
float_from_bits = cast("Callable[[Scalar], Scalar]", _float_from_bits)


@inline
def _guess(x: Scalar, c0: Scalar, kb: Scalar, h: Scalar, r0: Scalar, cells: np.ndarray,
           node_lo: np.ndarray, node_scale: np.ndarray, node_off: np.ndarray, node_n: np.ndarray,
           ue: np.ndarray) -> Scalar:
    """Index j into the unique edges ``ue`` (one feature's row) with usually
    ``ue[j] <= x < ue[j + 1]``: one table cell (rarely a child table), two branch-free steps.
    :func:`_settle` makes it exact."""
    b = float_bits(x - c0)
    key = min(max(((b & MAG) >> SHIFT) - kb, 0), h - 1)
    j = np.int64(cells[r0 + h + (key ^ (b >> 63))])
    while j < 0:  # a cell too coarse here: its child table
        node = -j - 1
        c = min(max(int((x - node_lo[node]) * node_scale[node]), 0), node_n[node] - 1)
        j = np.int64(cells[node_off[node] + c])
    j += ue[j + 1] <= x
    j += ue[j + 1] <= x
    return j


@inline
def _settle(x: Scalar, j: Scalar, ue: np.ndarray) -> Scalar:
    """The exact ``j`` with ``ue[j] <= x < ue[j + 1]``, from a guess (the scan alone decides
    the bin, whatever rounding the cell arithmetic did)."""
    if ue[j] > x or ue[j + 1] <= x:
        while ue[j] > x:
            j -= 1
        while ue[j + 1] <= x:
            j += 1
    return j


U1 = np.uint64(1)
#: :attr:`Grid.tables`: center, k0, half, root, uedges, unext, tied, node_lo, node_scale,
#: node_off, node_n, cells
GridTables = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                   np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@inline
def root_cell(x: Scalar, c0: Scalar, kb: Scalar, hm1: Scalar, base: Scalar) -> Scalar:
    """Index into ``cells`` of the root cell of ``x`` (``hm1`` = half - 1, ``base`` = root
    + half): the bits of ``x - c0``, exponent and top mantissa bits, clamped to the table."""
    b = float_bits(x - c0)
    key = min(max(((b & MAG) >> SHIFT) - kb, 0), hm1)
    return base + (key ^ (b >> 63))


@inline
def fast_bin(x: Scalar, c0: Scalar, kb: Scalar, hm1: Scalar, base: Scalar, cells: np.ndarray,
             ue: np.ndarray) -> Scalar:
    """Index j into the unique edges ``ue`` with ``ue[j] <= x < ue[j + 1]``, or -1 when the
    root cell cannot tell (child table, or the rounding of ``x - c0`` moved the cell)."""
    return cell_bin(x, root_cell(x, c0, kb, hm1, base), cells, ue)


@inline
def cell_bin(x: Scalar, cell: Scalar, cells: np.ndarray, ue: np.ndarray) -> Scalar:
    """:func:`fast_bin` from the root cell on: -1 for a child table, else the cell's last
    edge at or below its start plus the (at most two) edges inside that ``x`` reaches.
    Unsigned indices: no wraparound code."""
    j0 = np.int64(cells[np.uint64(cell)])
    u = np.uint64(j0 if j0 > 0 else 0)
    j = j0 + np.int64(ue[u + U1] <= x) + np.int64(ue[u + U1 + U1] <= x)
    return -1 if j0 < 0 else j


@kernel
def _exact_starts(t: np.ndarray, c0: Scalar, kb: Scalar, hm1: Scalar) -> None:
    """t[c] for c = 1 .. 2h-1 (estimates on entry) := the smallest double whose root cell is
    c or more (the root cell is a monotone function of x: a rounded subtraction, then bits):
    a short walk from the estimate, bisection over all doubles when that runs long. +inf
    when no double reaches c."""
    h = hm1 + 1
    big = np.finfo(np.float64).max
    for c in range(1, t.shape[0] - 1):
        x = min(max(t[c], -big), big) if t[c] == t[c] else 0.0
        done = False
        for _ in range(64):
            if root_cell(x, c0, kb, hm1, h) < c:
                if x == big:
                    break
                x = np.nextafter(x, np.inf)
            elif x > -big and root_cell(np.nextafter(x, -np.inf), c0, kb, hm1, h) >= c:
                x = np.nextafter(x, -np.inf)
            else:
                done = True
                break
        if not done:  # bisection over the ordered keys of the finite doubles
            lo = _order_key(-big)
            hi = _order_key(big)
            if root_cell(big, c0, kb, hm1, h) < c:
                t[c] = np.inf
                continue
            while lo < hi:  # smallest key with cell >= c in [lo, hi]
                mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # no overflow
                if root_cell(from_order_key(mid), c0, kb, hm1, h) >= c:
                    hi = mid
                else:
                    lo = mid + 1
            x = from_order_key(lo)
        t[c] = x


@inline
def _order_key(x: Scalar) -> Scalar:
    b = float_bits(x)
    return b ^ ((b >> 63) & MAG)


@inline
def from_order_key(k: Scalar) -> Scalar:
    return float_from_bits(k ^ ((k >> 63) & MAG))


@kernel
def slow_bin(x: Scalar, c0: Scalar, kb: Scalar, h: Scalar, r0: Scalar, cells: np.ndarray,
             node_lo: np.ndarray, node_scale: np.ndarray, node_off: np.ndarray,
             node_n: np.ndarray, ue: np.ndarray) -> Scalar:
    """The exact j of :func:`fast_bin` for any finite ``x`` (child tables, then a walk).
    Not inlined: it keeps the fast loops' registers free."""
    return _settle(x, _guess(x, c0, kb, h, r0, cells, node_lo, node_scale, node_off, node_n,
                             ue), ue)


@kernel
def _lookup(values: np.ndarray, center: np.ndarray, k0: np.ndarray, half: np.ndarray,
            root: np.ndarray, uedges: np.ndarray, unext: np.ndarray, tied: np.ndarray,
            node_lo: np.ndarray, node_scale: np.ndarray, node_off: np.ndarray, node_n: np.ndarray,
            cells: np.ndarray, out: np.ndarray) -> None:
    for f in range(values.shape[0]):
        c0, kb, h, r0 = center[f], k0[f], half[f], root[f]
        ue = uedges[f]
        un = unext[f]
        row = values[f]
        o = out[f]
        for i in range(row.shape[0]):
            x = row[i]
            j = fast_bin(x, c0, kb, h - 1, r0 + h, cells, ue)
            if j < 0:
                j = slow_bin(x, c0, kb, h, r0, cells, node_lo, node_scale, node_off, node_n,
                             ue)
            o[i] = un[j]


def _from_bits(k: np.ndarray) -> np.ndarray:
    return np.asarray(k, np.int64).view(np.float64)


def _root_cells(u: np.ndarray, c0: float) -> tuple[Any, ...]:
    """Root table on a symmetric log scale around ``c0``: (c0, k0, half, starts, ends)."""
    c0 = float(c0)
    with np.errstate(over="ignore", invalid="ignore"):  # edges near ±1.8e308: inf distances
        return _root_cells_at(u, c0)


def _root_cells_at(u: np.ndarray, c0: float) -> tuple[Any, ...]:
    dist = np.abs(u - c0)
    pos = dist[dist > 0]
    dmin = float(pos.min()) / 2 if pos.size else 1.0
    dmax = float(dist.max()) if pos.size else 1.0
    top = int(np.array(dmax).view(np.int64)) >> SHIFT
    kb = max(int(np.array(dmin).view(np.int64)) >> SHIFT, top - MAX_OCTAVES * 256)
    h = top - kb + 1
    keys = np.arange(h, dtype=np.int64) + kb
    d_lo = _from_bits(keys << SHIFT)
    d_hi = _from_bits((keys + 1) << SHIFT)
    d_lo[0], d_hi[-1] = 0.0, np.inf
    # cells 0..h-1: negative side, key h-1-c; cells h..2h-1: positive side, key c-h
    starts = np.concatenate([c0 - d_hi[::-1], c0 + d_lo])
    ends = np.concatenate([c0 - d_lo[::-1], c0 + d_hi])
    starts[0] = -np.inf
    return c0, kb, h, starts, ends


def _crowded(u: np.ndarray, root: tuple[Any, ...]) -> tuple[int, int]:
    """Sort key of a root table over the unique edges ``u``: edges left in cells with more
    than MAX_SCAN (values there take the slow path), then the table's size."""
    c0, kb, h, starts, ends = root
    n_in = np.searchsorted(u, ends, "left") - np.searchsorted(u, starts, "right")
    return int(n_in[n_in > MAX_SCAN].sum()), h


class Grid:
    """Edges of F features plus their lookup tables (built once per profile)."""

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = np.ascontiguousarray(edges, np.float64)
        if self.edges.ndim != 2 or self.edges.shape[1] < 2:  # F may be 0
            raise ValueError("edges must be [F, B+1] with B >= 1")
        if not np.isfinite(self.edges).all() or (np.diff(self.edges, axis=1) < 0).any():
            raise ValueError("edges must be finite and non-decreasing")
        self._tables()

    @classmethod
    def build(cls, edges: np.ndarray) -> "Grid":
        """The grid of ``edges`` [F, B+1] with its lookup tables.

        >>> Grid.build(np.array([[0.0, 1.0, 2.0]])).n_bins
        2
        """
        return cls(edges)

    @property
    def n_features(self) -> int:
        return int(self.edges.shape[0])

    @property
    def n_bins(self) -> int:
        return int(self.edges.shape[1]) - 1

    def _tables(self) -> None:
        n_feat, b1 = self.edges.shape
        uniq = [np.unique(e) for e in self.edges]
        width = max((u.size for u in uniq), default=0) + 1 + PAD
        # uedges[f] = -inf, the unique edges, +inf...; unext[f, j] = bin of [uedges[j], next)
        self.uedges = np.full((n_feat, width), np.inf)
        self.uedges[:, 0] = -np.inf
        self.unext = np.zeros((n_feat, width), np.int64)
        self.center = np.zeros(n_feat)
        self.k0 = np.zeros(n_feat, np.int64)
        self.half = np.zeros(n_feat, np.int64)
        self.root = np.zeros(n_feat, np.int64)
        self.tied = np.zeros(n_feat, np.bool_)
        lo: list[float] = []
        scale: list[float] = []
        off: list[int] = []
        size: list[int] = []
        cells: list[np.ndarray] = []
        total = 0

        def leaf_entries(starts: np.ndarray, ends: np.ndarray, u: np.ndarray, depth: int,
                          entries: np.ndarray) -> None:
            """Cells [starts, ends): last edge at or below the start (0: the -inf sentinel),
            or a child table. A root cell (exact bounds) must hold at most MAX_SCAN edges in
            (start, end] for the fast path: a crowded one that cannot have a child table
            (infinite, or at the depth limit) gets a one-cell node, i.e. the slow path."""
            entries[:] = np.searchsorted(u, starts, "right")
            n_in = np.searchsorted(u, ends, "right" if depth == 1 else "left") - entries
            for c in np.flatnonzero(n_in > MAX_SCAN):
                if depth < MAX_DEPTH and np.isfinite(ends[c] - starts[c]):
                    entries[c] = -(len(lo) + len(todo)) - 1
                    todo.append((starts[c], ends[c], depth + 1))
                elif depth == 1:
                    entries[c] = -(len(lo) + len(todo)) - 1
                    todo.append((starts[c], starts[c], MAX_DEPTH))

        for f, u in enumerate(uniq):
            self.uedges[f, 1: u.size + 1] = u
            self.unext[f, 1: u.size + 1] = np.searchsorted(self.edges[f], u, side="right")
            self.tied[f] = u.size < b1
            # root: symmetric log scale around the best of a few centers
            c0, kb, h, starts, ends = min(
                (_root_cells(u, c) for c in (u[(u.size - 1) // 2], 0.0, u[0], u[-1])),
                key=lambda r: _crowded(u, r))
            # exact cell bounds: the fast path then needs no check against the edges
            t = np.concatenate([starts, [np.inf]])
            _exact_starts(t, c0, kb, h - 1)
            starts, ends = t[:-1], t[1:]
            self.center[f], self.k0[f], self.half[f], self.root[f] = c0, kb, h, total
            entries = np.zeros(2 * h, np.int64)
            todo: list[tuple[float, float, int]] = []
            lo.append(0.0)
            scale.append(0.0)
            off.append(total)
            size.append(2 * h)
            leaf_entries(starts, ends, u, 1, entries)
            cells.append(entries)
            total += 2 * h
            while todo:  # breadth first: a child's index is known when its parent is built
                a, b, depth = todo.pop(0)
                inside = np.searchsorted(u, b, "left") - np.searchsorted(u, a, "right")
                n = int(LUT_FACTOR * (inside + 1)) if b > a else 1
                span = b - a
                sc = n / span if span > 0 and np.isfinite(n / span) else 0.0
                st = a + np.arange(n + 1) * (span / n) if sc > 0 else np.full(n + 1, a)
                st[-1] = b
                entries = np.zeros(n, np.int64)
                lo.append(a)
                scale.append(sc)
                off.append(total)
                size.append(n)
                total += n
                leaf_entries(st[:-1], st[1:], u, depth, entries)
                cells.append(entries)
        self.node_lo = np.array(lo, np.float64)
        self.node_scale = np.array(scale, np.float64)
        self.node_off = np.array(off, np.int64)
        self.node_n = np.array(size, np.int64)
        # the last entry is a child marker no root cell uses: the numeric kernel points bad
        # values at it, so that they leave the fast path
        flat = np.concatenate([*cells, [-1]])
        # int16 when it fits (1000-bin grids): half the cache footprint of the hot loop
        small = len(lo) < 2**15 and flat.max(initial=0) < 2**15
        self.cells = flat.astype(np.int16 if small else np.int32)

    @property
    def tables(self) -> GridTables:
        """The lookup arrays, in the order the kernels take them."""
        return (self.center, self.k0, self.half, self.root, self.uedges, self.unext, self.tied,
                self.node_lo, self.node_scale, self.node_off, self.node_n, self.cells)

    def lookup(self, values: np.ndarray) -> np.ndarray:
        """Bin of every finite value of ``values`` [F, N] (int64 [F, N]).

        >>> Grid.build(np.array([[0.0, 1.0, 2.0]])).lookup(np.array([[1.5, 9.0]])).tolist()
        [[2, 3]]
        """
        values = np.ascontiguousarray(values, np.float64)
        out = np.empty(values.shape, np.int64)
        _lookup(values, *self.tables, out)
        return out
