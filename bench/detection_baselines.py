"""What ``bench_detection`` compares the monitor with, on the same streams.

- River's ADWIN and KSWIN (``river.drift``, default settings; KSWIN seeded) fed the drifting
  column's per-event values in stream order, one ``update`` per event (that is how they are
  meant to be used); an alarm counts in the window of the event that raised it.
- A naive rule over the monitor's own window reports: a window is flagged when any test's
  p-value is under 0.05 (no correction, no effect floor, no confirmation).

Each returns, per window of the stream, whether it raised at least one alarm, so the
monitor's pages and these alarms are scored by the same code (:func:`first_after`).

>>> import numpy as np
>>> x = np.r_[np.zeros(2000), np.ones(2000)]
>>> w = river_alarms("adwin", x, size=1000, seed=0)
>>> first_after(w, onset=2)
0
"""

from __future__ import annotations

import numpy as np


def river_alarms(detector: str, values: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Per window of ``size`` events: did ``detector`` (``adwin`` | ``kswin``) alarm?"""
    from river import drift

    d = drift.ADWIN() if detector == "adwin" else drift.KSWIN(seed=seed)
    n_windows = values.size // size
    out = np.zeros(n_windows, bool)
    update = d.update
    for i, v in enumerate(values.tolist()):  # the detectors' contract: one event at a time
        update(v)
        if d.drift_detected:
            out[i // size] = True
    return out


def naive_flags(reports) -> np.ndarray:
    """Per window report: is any test's p-value under 0.05?"""
    return np.array([any(c.p_value is not None and c.p_value < 0.05 for c in r.checks)
                     for r in reports], bool)


def first_after(flags, onset: int) -> int | None:
    """Windows from ``onset`` to the first flagged one (0: the onset window itself), or
    None when nothing flagged from ``onset`` on."""
    hits = np.flatnonzero(np.asarray(flags, bool)[onset:])
    return int(hits[0]) if hits.size else None
