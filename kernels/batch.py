"""The columnar batch: what `monitor.stage1.decode` hands to the kernels.

One batch is a few numpy arrays over N events. Numeric features are stored feature-major
(``[F, N]``, C-contiguous) so that a kernel walks one feature's values contiguously.

Encodings (every array has N in its last axis):

- ``numeric``       float64 [F, N]. NaN where the value is absent.
- ``numeric_state`` int8 [F, N]: ``VALID`` (0), ``MISSING`` (1, field absent),
  ``NULL`` (2, JSON null), ``TYPE_ERROR`` (3, wrong type). NaN / ±inf values carry ``VALID``
  state here: the sketch counts them itself, since they are values, not absences.
- ``categorical``   int32 [C, N]: index into the profile's category list for that feature,
  ``CAT_MISSING`` (-1), ``CAT_NULL`` (-2), ``CAT_TYPE_ERROR`` (-3) or ``CAT_UNSEEN`` (-4).
- ``unseen_hash``   uint64 [C, N]: a stable 64-bit hash of the value where the code is
  ``CAT_UNSEEN``, else 0 (the sketch tracks unseen categories by hash, never by raw value).
- ``score``         float64 [N], NaN where absent; ``prediction`` int8 [N] (1 positive,
  0 negative, -1 absent); ``label`` int8 [N] (same encoding); ``group`` int32 [N], index into
  the profile's sensitive-group list, -1 absent, -4 unseen group.
- ``event_time_ms`` int64 [N]; ``offset`` int64 [N] (Kafka offset, or row number in replay).
- ``ingest_time_ms`` int64 [N] or None: the Kafka record timestamp, when the event entered the
  stream (-1 where the record has none); None when the source has no such time (replay of
  files). :class:`~kernels.quality.QualitySketch` measures freshness as ingest − event time.
- ``event_id_hash`` uint64 [N] or None: a stable 64-bit hash of the event id, 0 = no id
  (:mod:`kernels.dedup` looks duplicates up by it); None when the config names no id field.

The last two are optional (None by default), so older constructors keep working; ``take``
keeps None as None, ``empty`` gives zero-length arrays.

>>> b = ColumnBatch.empty(n_numeric=2, n_categorical=1)
>>> b.n_events, b.numeric.shape, b.categorical.shape, b.ingest_time_ms.dtype
(0, (2, 0), (1, 0), dtype('int64'))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VALID, MISSING, NULL, TYPE_ERROR = 0, 1, 2, 3
CAT_MISSING, CAT_NULL, CAT_TYPE_ERROR, CAT_UNSEEN = -1, -2, -3, -4


@dataclass(frozen=True)
class ColumnBatch:
    numeric: np.ndarray
    numeric_state: np.ndarray
    categorical: np.ndarray
    unseen_hash: np.ndarray
    score: np.ndarray
    prediction: np.ndarray
    label: np.ndarray
    group: np.ndarray
    event_time_ms: np.ndarray
    offset: np.ndarray
    ingest_time_ms: np.ndarray | None = None
    event_id_hash: np.ndarray | None = None

    @property
    def n_events(self) -> int:
        return int(self.offset.shape[0])

    @classmethod
    def empty(cls, n_numeric: int, n_categorical: int) -> "ColumnBatch":
        return cls(
            numeric=np.empty((n_numeric, 0), np.float64),
            numeric_state=np.empty((n_numeric, 0), np.int8),
            categorical=np.empty((n_categorical, 0), np.int32),
            unseen_hash=np.empty((n_categorical, 0), np.uint64),
            score=np.empty(0, np.float64),
            prediction=np.empty(0, np.int8),
            label=np.empty(0, np.int8),
            group=np.empty(0, np.int32),
            event_time_ms=np.empty(0, np.int64),
            offset=np.empty(0, np.int64),
            ingest_time_ms=np.empty(0, np.int64),
            event_id_hash=np.empty(0, np.uint64),
        )

    def take(self, index: np.ndarray) -> "ColumnBatch":
        """The events at ``index`` (an integer index or a boolean mask), in that order."""
        return ColumnBatch(
            numeric=np.ascontiguousarray(self.numeric[:, index]),
            numeric_state=np.ascontiguousarray(self.numeric_state[:, index]),
            categorical=np.ascontiguousarray(self.categorical[:, index]),
            unseen_hash=np.ascontiguousarray(self.unseen_hash[:, index]),
            score=self.score[index],
            prediction=self.prediction[index],
            label=self.label[index],
            group=self.group[index],
            event_time_ms=self.event_time_ms[index],
            offset=self.offset[index],
            ingest_time_ms=None if self.ingest_time_ms is None else self.ingest_time_ms[index],
            event_id_hash=None if self.event_id_hash is None else self.event_id_hash[index],
        )
