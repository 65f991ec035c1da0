"""Label values -> outcome codes, batched: 1 where the value equals the positive label, 0 for
another scalar, -1 where there is none (absent, null, NaN) or it is not a scalar (a list, an
object).

Equality is Python's, as the label stream has always read it: ``1 == True == 1.0`` (so a
positive label ``1`` also matches ``true`` and ``1.0``, and ``True`` matches ``1``), a string
never equals a number (``"1"`` is not ``1``), and an Arrow-inferred timestamp (a string that
looks like a date) equals nothing. :func:`label_codes` works on the Arrow column (numpy and
Arrow compute, no Python per value); :func:`label_codes_py` is the same rule over Python
values, for the bad path (a batch Arrow refused, decoded message by message).

>>> import pyarrow as pa
>>> label_codes(pa.array([1, 0, None, 1]), True).tolist()
[1, 0, -1, 1]
>>> label_codes(pa.array([1.0, 0.5, float("nan")]), 1).tolist()
[1, 0, -1]
>>> label_codes(pa.array(["yes", "no", None]), "yes").tolist()
[1, 0, -1]
>>> label_codes_py([1, "1", True, [1], None, 2.0], 1).tolist()
[1, 0, 1, -1, -1, 0]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _number(positive: Any) -> float | int | None:
    """``positive`` as a number when it is one (bool counts: ``True == 1``)."""
    if isinstance(positive, bool):
        return int(positive)
    if isinstance(positive, (int, float)):
        return positive
    return None


def label_codes(col: pa.Array | pa.ChunkedArray | None, positive: Any, n: int = 0
                ) -> np.ndarray:
    """int8 codes of an Arrow column (None: the field is absent: ``n`` rows of -1)."""
    if col is None:
        return np.full(n, -1, np.int8)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    t = col.type
    valid = np.ones(n, bool) if col.null_count == 0 else \
        np.asarray(col.is_valid().to_numpy(zero_copy_only=False), bool)
    num = _number(positive)
    if pa.types.is_null(t):
        return np.full(n, -1, np.int8)
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        if pa.types.is_boolean(t):
            v = np.asarray(col.fill_null(False).to_numpy(zero_copy_only=False), np.int64)
        else:
            v = col.fill_null(0).to_numpy(zero_copy_only=False)
        if pa.types.is_floating(t):
            valid &= ~np.isnan(v)
        if num is None:
            eq = np.zeros(n, bool)
        elif pa.types.is_floating(t):
            # Python compares int and float exactly: a float equals an int only when the
            # int is exactly representable and the values are equal
            eq = (v == float(num)) if float(num) == num else np.zeros(n, bool)
        elif isinstance(num, float):
            eq = (v.astype(np.float64) == num) if num.is_integer() else np.zeros(n, bool)
            if eq.any():  # beyond 2**53 float64 rounds: compare the integers exactly
                eq &= v == int(num)
        else:
            eq = (v == num) if _fits(num, pa.int64() if pa.types.is_boolean(t) else t) \
                else np.zeros(n, bool)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        eq = np.zeros(n, bool) if not isinstance(positive, str) else np.asarray(
            pc.equal(col, positive).fill_null(False).to_numpy(zero_copy_only=False), bool)
    elif pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
        eq = np.zeros(n, bool)  # a datetime equals no configured label
    else:  # lists, objects, binary...: not a label value
        return np.full(n, -1, np.int8)
    out = eq.astype(np.int8)
    out[~valid] = -1
    return out


def _fits(num: int, t: pa.DataType) -> bool:
    info = np.iinfo(t.to_pandas_dtype())
    return info.min <= num <= info.max


def label_codes_py(values: list, positive: Any) -> np.ndarray:
    """The same rule over Python values (the bad path)."""
    out = np.empty(len(values), np.int8)
    for i, u in enumerate(values):
        if u is None or isinstance(u, (list, dict)) or isinstance(u, float) and math.isnan(u):
            out[i] = -1
        else:
            out[i] = 1 if u == positive else 0
    return out
