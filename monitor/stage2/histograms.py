"""The window's histogram against the reference, small enough to ride in every report.

The sketches count each numeric feature on a fine grid of reference quantiles (1000 bins by
default). A report carries a coarse view of it for people to look at: the fine bins summed
into ``n_bins`` groups of equal reference mass (the reference's 20-quantiles by default;
underflow joins the first group, overflow the last, as PSI's deciles do), with the group
edges, the window's counts and the reference's counts. Categorical features carry their
reference categories plus "(unseen)". Counts are integers summed from the sketch, so a
report's histogram adds up to the feature's valid values exactly.

>>> import numpy as np
>>> from kernels.window import ReferenceProfile, WindowSketch, reference_batch
>>> rng = np.random.default_rng(0)
>>> p = ReferenceProfile.build(numeric={"x": rng.normal(size=5000)}, n_bins=100)
>>> w = WindowSketch.empty(p).update(reference_batch(
...     p, {"x": rng.normal(0.5, 1, 2000)}, {}, None, None, None, None))
>>> h = histograms(p, w)["x"]
>>> len(h["edges"]), len(h["window"]), sum(h["window"]), sum(h["reference"])
(21, 20, 2000, 5000)
>>> h["window"][-1] > h["window"][0]  # shifted up: more mass in the top group
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

UNSEEN = "(unseen)"


def _groups(counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Fine bins [F, B+2] (underflow, B bins, overflow) summed into ``n_bins`` groups."""
    b = counts.shape[1] - 2
    cut = np.rint(np.arange(1, n_bins) * b / n_bins).astype(np.int64)
    through = np.cumsum(counts[:, :-1], axis=1)[:, cut]  # underflow + fine bins < cut
    zero = np.zeros((counts.shape[0], 1), np.int64)
    total = counts.sum(axis=1, keepdims=True)
    return np.diff(np.concatenate([zero, through, total], axis=1), axis=1)


def _edges(edges: np.ndarray, n_bins: int) -> np.ndarray:
    b = edges.shape[1] - 1
    cut = np.rint(np.arange(1, n_bins) * b / n_bins).astype(np.int64)
    return np.concatenate([edges[:, :1], edges[:, cut], edges[:, -1:]], axis=1)


def histograms(profile, window, reference=None, n_bins: int = 20) -> dict[str, dict[str, Any]]:
    """Per feature (numeric, ``score``, categorical): edges or categories, window and
    reference counts. ``reference``: the sketch tested against (default the profile's)."""
    ref = reference if reference is not None else profile.reference
    out: dict[str, dict[str, Any]] = {}
    rows = [(profile.numeric_names, profile.edges, window.numeric.counts, ref.numeric.counts)]
    if profile.has_score:
        rows.append((["score"], np.atleast_2d(profile.score_edges),
                     np.atleast_2d(window.score.counts), np.atleast_2d(ref.score.counts)))
    for names, edges, cw, cr in rows:
        if not names:
            continue
        e = _edges(np.asarray(edges, np.float64), n_bins).tolist()
        gw = _groups(np.asarray(cw, np.int64), n_bins).tolist()
        gr = _groups(np.asarray(cr, np.int64), n_bins).tolist()
        for f, name in enumerate(names):
            out[name] = {"edges": e[f], "window": gw[f], "reference": gr[f]}
    cats = profile.categories
    for c, name in enumerate(profile.categorical_names):
        k = len(cats[name])
        out[name] = {"categories": [*cats[name], UNSEEN],
                     "window": [*window.categorical.counts[c, :k].tolist(),
                                int(window.categorical.unseen[c])],
                     "reference": [*ref.categorical.counts[c, :k].tolist(),
                                   int(ref.categorical.unseen[c])]}
    return out
