"""Arrow tables (Parquet / CSV input of replay and profile build) -> the decoder's columns.

A column per configured field; nulls are JSON nulls, absent columns are absent fields, so a
table decodes to the same :class:`~monitor.stage1.decode.Decoded` as the JSON of its rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from monitor.stage1.columns import F_MISSING, S_MISSING, arrow_to_float, arrow_to_string
from monitor.stage1.decoded import Decoded, _Kind


def decode_table(dec: Any, table: pa.Table, offsets: np.ndarray | None = None,
                 timestamps_ms: np.ndarray | None = None, first_offset: int = 0) -> Any:
    """``dec.decode_table``: ``offsets`` default to row numbers from ``first_offset``;
    ``timestamps_ms`` stand in for Kafka timestamps when the config has no event-time field
    (default: all missing)."""

    n = table.num_rows
    offsets = (np.arange(first_offset, first_offset + n, dtype=np.int64)
               if offsets is None else np.asarray(offsets, np.int64))
    ts = np.full(n, -1, np.int64) if timestamps_ms is None else np.asarray(timestamps_ms,
                                                                           np.int64)
    arrays: dict[str, Any] = {}
    names = set(table.column_names)
    for f in dec.fields:
        k = dec.kinds[f]
        if f not in names:
            arrays[f] = (pa.array(np.full(n, F_MISSING)) if k == _Kind.NUM else
                         pa.array([S_MISSING] * n, pa.string())
                         if k in (_Kind.STR, _Kind.ID) else [F_MISSING] * n)
            continue
        col = table.column(f).combine_chunks()
        if k == _Kind.ID:
            arrays[f] = col.cast(pa.string())
        elif k == _Kind.OUTCOME:
            arrays[f] = col.to_pylist()
        elif k == _Kind.NUM:
            arrays[f] = arrow_to_float(col)
        else:
            arrays[f] = arrow_to_string(col, iso=(f == dec.time_field))
    idx = np.arange(n, dtype=np.int64)
    batch, bad, errors, absent = dec._assemble(arrays, n, offsets, ts, idx, [])
    new = dec._new_names.of([c for c in table.column_names
                              if c not in ("_partition", "_offset", "_timestamp")], dec.known)
    dropped = {b.index for b in bad}
    samples = [(i, int(offsets[i]), new) for i in
               np.flatnonzero(offsets % dec.sample_every == 0).tolist() if i not in dropped
               ] if dec.sample_every else []
    return Decoded(batch=batch, bad=sorted(bad, key=lambda b: b.index),
                   field_errors=errors, absent_fields=absent, fallback=False,
                   samples=samples)

