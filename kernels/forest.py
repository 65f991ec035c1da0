"""Row outliers: an isolation forest (Liu, Ting & Zhou 2008) as flat arrays, scored in numba.

:meth:`IsolationForest.fit` runs once, on the reference's numeric rows (numpy). Each tree is a
*complete* binary tree of depth ``d = ceil(log2(sample_size))``: internal node ``k`` (children
``2k+1``, ``2k+2``) sends ``x`` right when ``x[split_feature[k]] >= split_value[k]``; a node
that isolated its sample early passes everything left (``split_value = +inf``) and every leaf
below it holds its path length. So ``leaf_path[t, j]`` is the full path length
``h = depth + c(size)`` of the node where tree ``t`` stopped splitting (the depth at which the
sample was isolated, plus the usual adjustment ``c(size)`` for the ``size`` reference points
left there), and scoring walks exactly ``d`` levels per tree without a branch.

Score ``2 ** (-mean(h) / c(psi))`` (``psi`` = the sample size used), in (0, 1], higher = more
isolated; a row is an outlier when its score is *above* :attr:`IsolationForest.threshold`,
the reference scores' ``1 - contamination`` quantile. A value whose decoder state is not VALID
or that is NaN / ±inf is replaced by the feature's reference median. Scoring a batch is one
numba call (``nogil``), ~12 ns per event and tree with 20 features on the dev machine.

Like every isolation forest fitted on clean data, it ranks a row with one wild feature no
higher than a row at that feature's sample extreme (the split values never pass the
reference's range): rows off in several features at once are its strength; one feature far
out is what the robust z-score of :mod:`kernels.quality` is for.

>>> rng = np.random.default_rng(0)
>>> forest = IsolationForest.fit(rng.normal(size=(2000, 2)), n_trees=20, seed=1)
>>> s = forest.score(np.array([[0.0, 9.0], [0.1, -7.0]]))  # features x events: 2nd is odd
>>> bool(s[0] < forest.threshold < s[1])
True
"""

from __future__ import annotations

import math

import numpy as np

from kernels.jit import Scalar, kernel
from kernels.serial import pack_arrays, unpack_arrays

EULER_GAMMA = 0.5772156649015329
BLOCK = 256  # rows transposed per block when scoring


def average_path(n: int) -> float:
    """``c(n)``: the average path length of an unsuccessful search in a binary search tree of
    ``n`` points (Liu et al.; the same formula as scikit-learn).

    >>> average_path(1), average_path(2), round(average_path(256), 4)
    (0.0, 1.0, 10.2448)
    """
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (math.log(n - 1) + EULER_GAMMA) - 2.0 * (n - 1) / n


@kernel
def _forest(values: np.ndarray, state: np.ndarray, medians: np.ndarray, split_offset: np.ndarray,
            split_value: np.ndarray, leaf_path: np.ndarray, depth: Scalar, norm: Scalar,
            threshold: Scalar, out: np.ndarray) -> Scalar:
    """Scores of the N rows of values [F, N] into out [N]; returns how many exceed
    ``threshold``. Rows are copied BLOCK at a time into a feature-major buffer (bad values
    -> median); ``split_offset`` = split feature · BLOCK. Then each tree moves the whole
    block down one level at a time: the rows are independent, so their loads overlap."""
    n_feat, n = values.shape
    n_trees, n_internal = split_offset.shape
    xb = np.empty(max(n_feat, 1) * BLOCK, np.float64)
    h = np.empty(BLOCK, np.float64)
    node = np.empty(BLOCK, np.int64)
    count = 0
    for b0 in range(0, n, BLOCK):
        m = min(BLOCK, n - b0)
        for f in range(n_feat):
            med = medians[f]
            for r in range(m):
                x = values[f, b0 + r]
                ok = (state[f, b0 + r] == 0) & (abs(x) < np.inf)
                xb[f * BLOCK + r] = x if ok else med
        for r in range(m):
            h[r] = 0.0
        for t in range(n_trees):
            so = split_offset[t]
            sv = split_value[t]
            lp = leaf_path[t]
            o0 = so[0]
            v0 = sv[0]
            for r in range(m):
                node[r] = 1 + np.int64(xb[o0 + r] >= v0)
            for _ in range(depth - 1):
                for r in range(m):
                    k = node[r]
                    node[r] = 2 * k + 1 + np.int64(xb[so[k] + r] >= sv[k])
            for r in range(m):
                h[r] += lp[node[r] - n_internal]
        for r in range(m):
            s = 2.0 ** (-(h[r] / n_trees) / norm)
            out[b0 + r] = s
            count += s > threshold
    return count


class IsolationForest:
    """A fitted isolation forest as flat arrays (see the module docstring).

    ``split_feature`` int32 [T, 2**d - 1], ``split_value`` float64 [T, 2**d - 1],
    ``leaf_path`` float64 [T, 2**d], ``medians`` float64 [F] (stand-ins for bad values),
    ``sample_size`` (the ``psi`` actually used), ``threshold``: the reference score quantile
    at ``1 - contamination``; a row whose score is *above* it is a row outlier.
    """

    def __init__(self, split_feature: np.ndarray, split_value: np.ndarray,
                 leaf_path: np.ndarray, medians: np.ndarray, sample_size: int,
                 threshold: float, contamination: float) -> None:
        self.split_feature = np.ascontiguousarray(split_feature, np.int32)
        self.split_value = np.ascontiguousarray(split_value, np.float64)
        self.leaf_path = np.ascontiguousarray(leaf_path, np.float64)
        self.medians = np.ascontiguousarray(medians, np.float64)
        self.sample_size = int(sample_size)
        self.threshold = float(threshold)
        self.contamination = float(contamination)
        self.depth = int(self.leaf_path.shape[1]).bit_length() - 1
        self.norm = average_path(self.sample_size)
        self._split_offset = self.split_feature.astype(np.int64) * BLOCK  # for the kernel

    n_trees = property(lambda self: int(self.split_feature.shape[0]))
    n_features = property(lambda self: int(self.medians.shape[0]))

    @classmethod
    def fit(cls, X: np.ndarray, n_trees: int = 25, sample_size: int = 256,
            contamination: float = 0.001, seed: int = 0,
            medians: np.ndarray | None = None) -> "IsolationForest":
        """Fit on ``X`` [rows, features] (NaN / ±inf -> ``medians``, by default the finite
        values' medians). Deterministic: the same data and seed give the same arrays. Each
        tree draws ``min(sample_size, rows)`` rows without replacement; a node splits on a
        feature drawn uniformly among those not constant in it, at a value uniform in
        [min, max). Needs at least 2 rows.

        >>> a = IsolationForest.fit(np.arange(20.0).reshape(10, 2), n_trees=3, seed=4)
        >>> b = IsolationForest.fit(np.arange(20.0).reshape(10, 2), n_trees=3, seed=4)
        >>> a.to_bytes() == b.to_bytes(), a.depth, a.split_feature.shape
        (True, 4, (3, 15))
        """
        if n_trees < 1 or sample_size < 2 or not 0.0 < contamination < 1.0:
            raise ValueError(f"isolation forest: n_trees {n_trees} (>= 1), sample_size "
                             f"{sample_size} (>= 2), contamination {contamination} (in (0, 1))")
        X = np.array(X, np.float64, copy=True).reshape(len(X), -1)
        n, n_feat = X.shape
        if n < 2:
            raise ValueError(f"an isolation forest needs at least 2 reference rows, got {n}")
        if medians is None:
            medians = np.array([np.median(c[np.isfinite(c)]) if np.isfinite(c).any() else 0.0
                                for c in X.T])
        medians = np.asarray(medians, np.float64)
        bad = ~np.isfinite(X)
        X[bad] = np.broadcast_to(medians, X.shape)[bad]
        psi = min(int(sample_size), n)
        depth = max(1, math.ceil(math.log2(psi)))
        n_int, n_leaf = (1 << depth) - 1, 1 << depth
        rng = np.random.default_rng(seed)
        sf = np.zeros((n_trees, n_int), np.int32)
        sv = np.full((n_trees, n_int), np.inf)
        lp = np.zeros((n_trees, n_leaf))
        for t in range(n_trees):
            sample = X[rng.choice(n, psi, replace=False)]
            stack = [(0, np.arange(psi), 0)]
            while stack:
                node, rows, level = stack.pop()
                sub = sample[rows]
                if level < depth and rows.size > 1:
                    lo, hi = sub.min(axis=0), sub.max(axis=0)
                    cand = np.flatnonzero(hi > lo)
                    if cand.size:
                        f = int(cand[rng.integers(cand.size)])
                        p = lo[f] + rng.random() * (hi[f] - lo[f])
                        if not lo[f] < p <= hi[f]:
                            p = hi[f]
                        sf[t, node], sv[t, node] = f, p
                        right = sub[:, f] >= p
                        stack.append((2 * node + 2, rows[right], level + 1))
                        stack.append((2 * node + 1, rows[~right], level + 1))
                        continue
                k = depth - level  # isolated here: every leaf below holds this path length
                first = ((node + 1) << k) - 1 - n_int
                lp[t, first:first + (1 << k)] = level + average_path(int(rows.size))
        forest = cls(sf, sv, lp, medians, psi, np.inf, contamination)
        scores = forest.score(np.ascontiguousarray(X.T))
        forest.threshold = float(np.quantile(scores, 1.0 - contamination))
        return forest

    def _run(self, values: np.ndarray, state: np.ndarray | None) -> tuple[np.ndarray, int]:
        values = np.ascontiguousarray(values, np.float64)
        if state is None:
            state = np.zeros(values.shape, np.int8)
        state = np.ascontiguousarray(state, np.int8)
        if values.ndim != 2 or values.shape[0] != self.n_features or state.shape != \
                values.shape:
            raise ValueError(f"values {values.shape} / state {state.shape}: expected "
                             f"[{self.n_features}, N] each")
        out = np.empty(values.shape[1], np.float64)
        count = _forest(values, state, self.medians, self._split_offset, self.split_value,
                        self.leaf_path, self.depth, self.norm, self.threshold, out)
        return out, int(count)

    def score(self, values: np.ndarray, state: np.ndarray | None = None) -> np.ndarray:
        """Anomaly scores of the rows of ``values`` [F, N] (feature-major, like a batch);
        ``state`` int8 [F, N] as in :mod:`kernels.batch` (None = all valid)."""
        return self._run(values, state)[0]

    def count_outliers(self, values: np.ndarray, state: np.ndarray | None = None) -> int:
        """How many rows score above :attr:`threshold` (one kernel call)."""
        return self._run(values, state)[1]

    # bytes ---------------------------------------------------------------------------
    def to_arrays(self) -> list[np.ndarray]:
        return [self.split_feature, self.split_value, self.leaf_path, self.medians,
                np.array([self.sample_size, self.threshold, self.contamination])]

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray]) -> "IsolationForest | None":
        """Inverse of :meth:`to_arrays`; :meth:`absent_arrays` gives None."""
        sf, sv, lp, med, p = arrays
        if sf.shape[0] == 0:
            return None
        return cls(sf, sv, lp, med, int(p[0]), float(p[1]), float(p[2]))

    @staticmethod
    def absent_arrays() -> list[np.ndarray]:
        """What :meth:`to_arrays` stands for when there is no forest."""
        return [np.zeros((0, 0), np.int32), np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0),
                np.zeros(3)]

    def to_bytes(self) -> bytes:
        return pack_arrays(self.to_arrays())

    @classmethod
    def from_bytes(cls, b: bytes) -> "IsolationForest | None":
        return cls.from_arrays(unpack_arrays(b))
