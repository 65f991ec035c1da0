"""Synthetic predictions with delayed labels, shared by tests, bench and the demo.

``labelled_stream(...)`` returns two column dicts: predictions (id hash, event time, score,
class, slice code, group code, partition) and labels (id hash, label time, label,
partition), labels in label-time order. Each label is delayed uniformly in
[0, ``max_delay_ms``]. Slices are uniform unless ``slice_p`` gives their weights. The model
is good everywhere (score informative, threshold 0.5) except in slice ``degraded_slice``
from ``degrade_at_ms`` on, where the label no longer follows the score (accuracy falls to
about one third).

>>> p, l = labelled_stream(n=100, seed=1)
>>> len(p["id"]), len(l["id"]), bool((np.sort(l["time"]) == l["time"]).all())
(100, 100, True)
"""

from __future__ import annotations

import numpy as np


def labelled_stream(n: int = 10_000, seed: int = 0, events_per_s: float = 200.0,
                    start_ms: int = 0, max_delay_ms: int = 30_000, n_slices: int = 4,
                    n_groups: int = 2, partitions: int = 2, degraded_slice: int | None = None,
                    degrade_at_ms: int | None = None, slice_p=None) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    t = start_ms + (np.arange(n) * 1000.0 / events_per_s).astype(np.int64)
    slice_code = (rng.integers(0, n_slices, n) if slice_p is None else
                  rng.choice(n_slices, n, p=slice_p)).astype(np.int32)
    group = rng.integers(0, n_groups, n).astype(np.int32)
    score = np.clip(rng.beta(2, 2, n), 0.0, 1.0)
    label = (rng.random(n) < score).astype(np.int8)  # calibrated: P(y=1 | s) = s
    if degraded_slice is not None:
        bad = (slice_code == degraded_slice) & (t >= (degrade_at_ms or 0))
        label[bad] = (rng.random(int(bad.sum())) < 1 - score[bad]).astype(np.int8)
    pred = (score >= 0.5).astype(np.int8)
    part = ((ids >> np.uint64(17)) % np.uint64(partitions)).astype(np.int32)
    lt = t + rng.integers(0, max_delay_ms + 1, n)
    order = np.argsort(lt, kind="stable")
    preds = {"id": ids, "time": t, "score": score, "pred": pred, "slice": slice_code,
             "group": group, "partition": part, "label": label}
    labels = {"id": ids[order], "time": lt[order], "label": label[order],
              "partition": part[order], "prediction_time": t[order]}
    return preds, labels
