"""Fitting the isolation forest of a reference profile (kernels/forest.py) on 100,000 rows of
20 features, beside scikit-learn's IsolationForest with the same trees and sample size,
interleaved in the same run (median of 5 each). This was a wall-clock assertion in the tests;
it is a figure here.

    python -m bench.bench_forest [--dry-run]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from bench.report import median, publish
from kernels.quality import IsolationForest


def main() -> None:
    from sklearn.ensemble import IsolationForest as SkForest

    X = np.random.default_rng(6).normal(size=(100_000, 20))
    IsolationForest.fit(X[:1000])  # compile outside the timing
    ours, theirs = [], []
    for _ in range(5):
        t = time.perf_counter()
        f = IsolationForest.fit(X)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        SkForest(n_estimators=f.n_trees, max_samples=256, random_state=0).fit(X)
        theirs.append(time.perf_counter() - t)
    a, b = median(ours), median(theirs)
    text = (f"| fit on 100,000 x 20 | seconds (median of 5) |\n|---|---|\n"
            f"| kernels IsolationForest.fit ({f.n_trees} trees, 256 samples) | {a:.3f} |\n"
            f"| sklearn IsolationForest.fit (same) | {b:.3f} |\n\n"
            f"Ratio sklearn / ours: {b / a:.1f}x.")
    print(text)
    if "--dry-run" not in sys.argv:
        publish("forest", {"forest.fit_seconds_100k_x20": (round(a, 4), "s"),
                           "forest.fit_speedup_vs_sklearn": (round(b / a, 2), "x")}, text)


if __name__ == "__main__":
    main()
