"""Far-future event times are bad messages, not watermarks.

One event dated in year 9999 would move its partition's watermark there, close every window
up to it and make stage 2 walk millions of empty windows. So an event whose time is more
than ``stream.max_future_skew`` after its Kafka message's timestamp (the producer's or the
broker's clock, fixed per message, so a re-read after a restart decides the same) is taken
out of the batch and counted as bad with reason :data:`FUTURE_EVENT_TIME`. Times before 1970
are already bad in the decoder (``bad_event_time``). A message without a Kafka timestamp is
compared with the wall clock.

>>> import numpy as np
>>> from monitor.stage1.decode import Decoded
>>> from kernels.batch import ColumnBatch
>>> b = ColumnBatch.empty(0, 0)
>>> b = b.take(np.zeros(0, np.int64))
>>> dec = Decoded(batch=b, bad=[], field_errors={})
>>> reject_future(dec, np.zeros(0, np.int64), 1000).bad
[]
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from monitor.stage1.decode import BadMessage, Decoded

FUTURE_EVENT_TIME = "future_event_time"


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
