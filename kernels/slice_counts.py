"""Per-slice counts of one batch (the kernel of ``monitor/stage1/slices.py``): one pass over
the events, each event counted once in its slice of every key.

Arrays in, arrays out, nothing allocated:

- ``slices`` int64 [K, n]: each event's slice (global numbering) under each key;
- ``numeric`` float64 [F, n], ``state`` int8 [F, n] (decoder states: 0 valid, 1 missing,
  2 null, 3 type error), ``inner`` float64 [F', B - 1]: the inner bin edges of each feature;
  a finite valid value goes to bin ``#(inner <= x)`` (``searchsorted(inner, x, "right")``);
- ``score`` float64 [n]: when the outputs have one numeric row more than ``numeric``
  (``F' = F + 1``), the prediction score is that row: NaN is "missing", ±inf non-finite;
- ``codes`` int32 [C, n]: category codes (>= 0 a reference category, -1 missing, -2 null,
  -3 type error, -4 unseen); code ``c >= 0`` counts in column ``min(c, B - 1)``, unseen in
  ``B - 1``, the rest in no column;
- out: ``events`` [S], ``num`` [S, F, B], ``cat`` [S, C, B], ``qual`` [S, F + C, 4]
  (missing, null, type error, NaN / ±inf or unseen), all int64, added to; ``F'`` numeric rows.

>>> import numpy as np
>>> ev, num = np.zeros(2, np.int64), np.zeros((2, 1, 2), np.int64)
>>> cat, q = np.zeros((2, 0, 2), np.int64), np.zeros((2, 1, 4), np.int64)
>>> slice_update(np.array([[0, 1, 1]]), np.array([[0.5, 2.0, np.nan]]),
...              np.zeros((1, 3), np.int8), np.array([[1.0]]), np.zeros(3),
...              np.zeros((0, 3), np.int32), ev, num, cat, q)
>>> ev.tolist(), num[:, 0].tolist(), q[1, 0].tolist()
([1, 2], [[1, 0], [0, 1]], [0, 0, 0, 1])
"""

from __future__ import annotations

import math

import numpy as np

from kernels.jit import kernel


@kernel
def slice_update(slices: np.ndarray, numeric: np.ndarray, state: np.ndarray,
                 inner: np.ndarray, score: np.ndarray, codes: np.ndarray, events: np.ndarray,
                 num: np.ndarray, cat: np.ndarray, qual: np.ndarray) -> None:
    n_keys, n = slices.shape
    n_feat, n_num, n_cat = numeric.shape[0], num.shape[1], codes.shape[0]
    n_bins = num.shape[2] if n_num else cat.shape[2]
    for k in range(n_keys):
        for i in range(n):
            events[slices[k, i]] += 1
    for f in range(n_num):
        for i in range(n):
            if f < n_feat:
                st = state[f, i]
                x = numeric[f, i]
            else:  # the score row
                x = score[i]
                st = 1 if math.isnan(x) else 0
            if st == 0 and math.isfinite(x):
                b = 0
                for j in range(n_bins - 1):  # branch-free: the bins are few
                    b += inner[f, j] <= x
                for k in range(n_keys):
                    num[slices[k, i], f, b] += 1
            else:
                q = st - 1 if st != 0 else 3
                if q >= 0 and q < 4:
                    for k in range(n_keys):
                        qual[slices[k, i], f, q] += 1
    for c in range(n_cat):
        for i in range(n):
            code = codes[c, i]
            if code >= 0 or code == -4:
                col = n_bins - 1 if code == -4 or code >= n_bins - 1 else code
                for k in range(n_keys):
                    cat[slices[k, i], c, col] += 1
                if code == -4:
                    for k in range(n_keys):
                        qual[slices[k, i], n_num + c, 3] += 1
            elif code >= -3:
                for k in range(n_keys):
                    qual[slices[k, i], n_num + c, -1 - code] += 1
