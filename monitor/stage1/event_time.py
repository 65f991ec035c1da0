"""Event times that cannot be right: far-future times are bad messages, not watermarks;
times of the wrong magnitude for the configured unit are a config error.

One event dated in year 9999 would move its partition's watermark there, close every window
up to it and make stage 2 walk millions of empty windows. So an event whose time is more
than ``stream.max_future_skew`` after its Kafka message's timestamp (the producer's or the
broker's clock, fixed per message, so a re-read after a restart decides the same) is taken
out of the batch and counted as bad with reason :data:`FUTURE_EVENT_TIME`. Times before 1970
are already bad in the decoder (``bad_event_time``). A message without a Kafka timestamp is
compared with the wall clock.

>>> import numpy as np
>>> from monitor.stage1.decoded import Decoded
>>> from kernels.batch import ColumnBatch
>>> b = ColumnBatch.empty(0, 0)
>>> b = b.take(np.zeros(0, np.int64))
>>> dec = Decoded(batch=b, bad=[], field_errors={})
>>> reject_future(dec, np.zeros(0, np.int64), 1000).bad
[]

Epoch seconds read as milliseconds put every event into one window dated 1970; milliseconds
read as seconds, tens of thousands of years ahead. :func:`unit_mismatch` tells from the
magnitude of the values as written (their median) which unit they look like; the first batch
with event times is checked (:class:`TimeUnitCheck` live, :func:`check_table_unit` in
replay) and a mismatch raises a :class:`~monitor.errors.ConfigError` naming the fix:

>>> unit_mismatch(np.array([1.767e9, 1.767e9 + 5]), "ms")
'values look like seconds since the epoch; set it to s'
>>> unit_mismatch(np.array([1.767e12]), "s") is None, unit_mismatch(np.array([250.0]), "ms")
(False, None)
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from monitor.errors import ConfigError
from monitor.stage1.decoded import BadMessage, Decoded

FUTURE_EVENT_TIME = "future_event_time"
UNIT_FIELD = "stream.event_time.unit"
#: epoch seconds of 1973-03-03 .. year 5138 (as ms: 1970-01-02 .. 1973-03-03); epoch
#: milliseconds since 1973-03-03 (as seconds: after year 5138)
SECONDS_LIKE = (1e8, 1e11)
MILLIS_LIKE = 1e11
_SAMPLE = 10_000


def unit_mismatch(raw: np.ndarray, unit: str) -> str | None:
    """What is wrong with numeric event times ``raw`` (as written, in ``unit``: ``ms`` or
    ``s``), judged by their median, or None if they look like ``unit``. Times that are no
    plausible epoch time in either unit (small test clocks, NaN) are no mismatch."""
    v = np.asarray(raw, np.float64)[:_SAMPLE]
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0 or unit not in ("ms", "s"):
        return None
    m = float(np.median(v))
    if unit == "ms" and SECONDS_LIKE[0] <= m < SECONDS_LIKE[1]:
        return "values look like seconds since the epoch; set it to s"
    if unit == "s" and m >= MILLIS_LIKE:
        return "values look like milliseconds since the epoch; set it to ms"
    return None


def check_table_unit(table, field: str | None, unit: str) -> None:
    """Replay: raise :class:`ConfigError` if the first rows of ``table``'s numeric event-time
    column do not fit ``unit``."""
    import pyarrow as pa

    if field is None or field not in table.column_names or table.num_rows == 0:
        return
    col = table.column(field).slice(0, _SAMPLE)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        return
    why = unit_mismatch(col.to_numpy(zero_copy_only=False).astype(np.float64), unit)
    if why:
        raise ConfigError(UNIT_FIELD, why)


class TimeUnitCheck:
    """Wraps stage 1's ``decode(values, offsets, timestamps)``: the first batch that has
    event times is checked against the configured unit, and a mismatch raises
    :class:`ConfigError` before a single event is windowed (stage 1 stops, ``/health`` shows
    the message, the supervisor gives up with it). Later batches pass straight through.
    Milliseconds read as seconds are all bad (past year 9999), so then up to 20 of the bad
    JSON values are read again for their magnitude (the bad path, once)."""

    def __init__(self, decode, field: str | None, unit: str) -> None:
        self.decode, self.field, self.unit = decode, field, unit
        self.done = field is None or unit not in ("ms", "s")

    def __call__(self, values: list, offsets: np.ndarray, timestamps_ms: np.ndarray):
        dec = self.decode(values, offsets, timestamps_ms)
        if not self.done:
            self.check(dec, values)
        return dec

    def check(self, dec: Decoded, values: list) -> None:
        scale = 1000.0 if self.unit == "s" else 1.0
        raw = dec.batch.event_time_ms[:_SAMPLE] / scale
        if raw.size == 0:
            raw = self._bad_values(dec, values)
        if raw.size == 0:
            return
        self.done = True
        why = unit_mismatch(raw, self.unit)
        if why:
            raise ConfigError(UNIT_FIELD, why)

    def _bad_values(self, dec: Decoded, values: list) -> np.ndarray:
        import orjson

        out = []
        for b in dec.bad[:20]:
            try:
                v = orjson.loads(values[b.index]).get(self.field)
            except Exception:  # noqa: BLE001 - not JSON, not an object: no evidence
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(float(v))
        return np.array(out, np.float64)


def reject_future(dec: Decoded, kafka_ts: np.ndarray, max_skew_ms: int,
                  now_ms: int | None = None) -> Decoded:
    """``dec`` with the events more than ``max_skew_ms`` after their message's Kafka
    timestamp (``kafka_ts``, one per input message) moved to ``dec.bad``."""
    b = dec.batch
    if b.n_events == 0:
        return dec
    n_msgs = len(kafka_ts)
    good = np.ones(n_msgs, bool)
    good[np.array([x.index for x in dec.bad], np.int64)] = False
    good_idx = np.flatnonzero(good)  # batch row j came from message good_idx[j]
    ref = np.asarray(kafka_ts, np.int64)[good_idx]
    now = int(time.time() * 1000) if now_ms is None else now_ms
    ref = np.where(ref > 0, ref, now)
    far = b.event_time_ms > ref + max_skew_ms
    if not far.any():
        return dec
    rows = np.flatnonzero(far)
    new_bad = [BadMessage(int(good_idx[j]), int(b.offset[j]), FUTURE_EVENT_TIME,
                          f"event time {int(b.event_time_ms[j])} ms is more than "
                          f"{max_skew_ms} ms after the message's timestamp "
                          f"{int(ref[j])} (stream.max_future_skew)")
               for j in rows.tolist()]  # bad path only
    dropped = set(good_idx[rows].tolist())
    return dataclasses.replace(
        dec, batch=b.take(np.flatnonzero(~far)),
        bad=sorted([*dec.bad, *new_bad], key=lambda x: x.index),
        samples=[s for s in dec.samples if s[0] not in dropped])
