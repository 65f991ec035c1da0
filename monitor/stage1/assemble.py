"""Decoded field values -> :class:`~kernels.batch.ColumnBatch`, field errors, bad event times.

Two steps, so that every decoding path meets in the same place:

1. :func:`convert` turns per-field arrays in the sentinel conventions of
   :mod:`monitor.stage1.columns` (what msgspec, the slow path, Avro and Arrow tables give)
   into :class:`Converted` columns: numbers and their states, category codes and unseen
   hashes, group codes, raw outcome codes, event times and their states, id hashes — plain
   numpy arrays, one row per message. The compiled JSON scanner writes the same columns
   directly (:mod:`monitor.stage1.json_native`), and the messages it leaves to the slow path
   are converted here and put in their rows (:meth:`Converted.put`).
2. :func:`build` drops the rows without a usable event time (bad messages) and assembles the
   batch and the field error counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kernels.batch import CAT_UNSEEN, MISSING, NULL, TYPE_ERROR, VALID, ColumnBatch
from monitor.stage1.columns import (MAX_MS, category_codes, category_counts, float_column,
                                    id_hashes, iso_column, outcome_finish, outcome_raw,
                                    state_counts)

MALFORMED, MISSING_EVENT_TIME, BAD_EVENT_TIME = "malformed", "missing_event_time", "bad_event_time"


@dataclass
class Converted:
    """Per-message columns of one batch (all of the same length)."""

    num: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # v, state
    cat: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # codes, hash
    outcome: dict[str, np.ndarray] = field(default_factory=dict)  # outcome_raw codes
    group: np.ndarray | None = None  # codes against the group list, unseen not hashed
    time: tuple[np.ndarray, np.ndarray] | None = None  # ms, state
    ids: np.ndarray | None = None  # uint64 id hashes

    def put(self, rows: np.ndarray, o: "Converted") -> None:
        """Write ``o``'s columns (one row per entry of ``rows``) into rows ``rows``."""
        for f, (v, st) in o.num.items():
            self.num[f][0][rows], self.num[f][1][rows] = v, st
        for f, (codes, h) in o.cat.items():
            self.cat[f][0][rows], self.cat[f][1][rows] = codes, h
        for f, r in o.outcome.items():
            self.outcome[f][rows] = r
        if o.group is not None:
            self.group[rows] = o.group
        if o.time is not None:
            self.time[0][rows], self.time[1][rows] = o.time
        if o.ids is not None:
            self.ids[rows] = o.ids


    def take(self, idx: np.ndarray) -> "Converted":
        """The rows ``idx``."""
        return Converted(
            num={f: (v[idx], st[idx]) for f, (v, st) in self.num.items()},
            cat={f: (c[idx], h[idx]) for f, (c, h) in self.cat.items()},
            outcome={f: r[idx] for f, r in self.outcome.items()},
            group=None if self.group is None else self.group[idx],
            time=None if self.time is None else (self.time[0][idx], self.time[1][idx]),
            ids=None if self.ids is None else self.ids[idx])


Layout = Any  # a Decoder: cfg, time_field, time_unit, id_field, ingest_times, value sets


def convert(d: Layout, arrays: dict[str, Any]) -> Converted:
    """Per-field sentinel arrays -> :class:`Converted` (see the module docstring)."""
    c = Converted()
    cfg, p = d.cfg, d.cfg.prediction
    for f in list(cfg.features.numeric) + ([p.score] if p.score else []):
        c.num[f] = float_column(arrays[f])
    for f in cfg.features.categorical:
        c.cat[f] = category_codes(arrays[f], d._value_sets[f])
    if p.class_:
        c.outcome[p.class_] = outcome_raw(arrays[p.class_], p.positive_class)
    if p.label:
        c.outcome[p.label] = outcome_raw(arrays[p.label], p.positive_label)
    if cfg.sensitive:
        c.group = category_codes(arrays[cfg.sensitive.attribute], d._group_set,
                                 hash_unseen=False)[0]
    if d.time_field is not None:
        c.time = event_times(arrays[d.time_field], d.time_unit)
    if d.id_field:
        c.ids = id_hashes(arrays[d.id_field])
    return c


def event_times(a, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Event times in ms and their states; a value that is no time between 1970 and 9999
    is a type error."""
    if unit == "iso8601":
        return iso_column(a)
    v, state = float_column(a)
    return times_from_numbers(v, state, unit)


def times_from_numbers(v: np.ndarray, state: np.ndarray, unit: str):
    scale = 1000.0 if unit == "s" else 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.round(v * scale)
        ok = (state == VALID) & np.isfinite(w) & (w >= 0) & (w <= MAX_MS)
    state = np.where((state == VALID) & ~ok, TYPE_ERROR, state).astype(np.int8)
    return np.where(ok, w, 0).astype(np.int64), state


def build(d: Layout, c: Converted, n: int, offsets, kafka_ts, idx, bad, bad_message):
    """Rows of ``c`` (messages ``idx`` of the input, at ``offsets``) -> (batch, bad list,
    field errors, absent fields). ``bad_message(index, offset, reason, error)`` makes the
    bad-message records of rows without a usable event time."""
    bad = list(bad)
    if d.time_field is None:
        t = np.asarray(kafka_ts, np.int64)
        keep = t >= 0
        for j in np.flatnonzero(~keep).tolist():
            bad.append(bad_message(int(idx[j]), int(offsets[j]), MISSING_EVENT_TIME,
                                   "the Kafka message has no timestamp"))
    else:
        t, state = c.time
        keep = state == VALID
        f = d.time_field
        what = ("an ISO 8601 time" if d.time_unit == "iso8601" else
                f"a number of {d.time_unit} between 1970 and 9999")
        text = {MISSING: (MISSING_EVENT_TIME, f"no field {f!r}"),
                NULL: (MISSING_EVENT_TIME, f"{f!r} is null"),
                TYPE_ERROR: (BAD_EVENT_TIME, f"{f!r} is not {what}")}
        for j in np.flatnonzero(~keep).tolist():
            reason, err = text[int(state[j])]
            bad.append(bad_message(int(idx[j]), int(offsets[j]), reason, err))
    sel = None if keep.all() else np.flatnonzero(keep)

    def kept(a):
        return a if sel is None else a[sel]

    m = n if sel is None else len(sel)
    cfg, p = d.cfg, d.cfg.prediction
    errors: dict[str, dict[str, int]] = {}
    num = np.empty((len(cfg.features.numeric), m))
    num_state = np.empty((len(cfg.features.numeric), m), np.int8)
    for i, f in enumerate(cfg.features.numeric):
        num[i], num_state[i] = kept(c.num[f][0]), kept(c.num[f][1])
        errors[f] = state_counts(num_state[i])
    cat = np.empty((len(cfg.features.categorical), m), np.int32)
    uh = np.zeros((len(cfg.features.categorical), m), np.uint64)
    for i, f in enumerate(cfg.features.categorical):
        cat[i], uh[i] = kept(c.cat[f][0]), kept(c.cat[f][1])
        errors[f] = category_counts(cat[i])
    score = np.full(m, np.nan)
    if p.score:
        score, st = kept(c.num[p.score][0]), kept(c.num[p.score][1])
        errors[p.score] = state_counts(st)
    pred = np.full(m, -1, np.int8)
    if p.class_:
        pred, errors[p.class_] = outcome_finish(kept(c.outcome[p.class_]))
    elif p.score and p.threshold is not None:
        pred = np.where(np.isnan(score), -1, score >= p.threshold).astype(np.int8)
    label = np.full(m, -1, np.int8)
    if p.label:
        label, errors[p.label] = outcome_finish(kept(c.outcome[p.label]))
    group = np.full(m, -1, np.int32)
    if cfg.sensitive:
        a = cfg.sensitive.attribute
        group = np.array(kept(c.group), np.int32)
        if a not in errors:
            errors[a] = category_counts(group)
        group[(group < 0) & (group != CAT_UNSEEN)] = -1
    ids = kept(c.ids) if d.id_field else None
    ingest = kept(np.asarray(kafka_ts, np.int64)) if d.ingest_times else None
    batch = ColumnBatch(numeric=num, numeric_state=num_state, categorical=cat,
                        unseen_hash=uh, score=np.ascontiguousarray(score), prediction=pred,
                        label=label, group=group, event_time_ms=kept(t),
                        offset=kept(np.asarray(offsets, np.int64)), ingest_time_ms=ingest,
                        event_id_hash=ids)
    absent = tuple(f for f, e in errors.items() if m and e["missing"] == m)
    return batch, bad, errors, absent
