"""streamdrift kernels: numba sketches and drift / fairness statistics.

Arrays in, arrays out. ``import kernels`` needs neither Kafka nor Faust.

- :mod:`kernels.batch` — the columnar batch the decoder produces;
- :mod:`kernels.numeric`, :mod:`kernels.categorical` — the sketches (numba kernels);
- :mod:`kernels.quality` — range / robust-outlier bounds, the isolation forest for row
  outliers, and the window's quality counters (incl. event-time lag);
- :mod:`kernels.window` — the reference profile and the per-window bundle of sketches;
- :mod:`kernels.numeric_stats`, :mod:`kernels.categorical_stats`, :mod:`kernels.fairness`,
  :mod:`kernels.evaluate` — the statistics, by family; :mod:`kernels.catalogue` — the checks;
- :mod:`kernels.dedup` — duplicate event ids.
"""

from kernels.batch import ColumnBatch
from kernels.evaluate import evaluate
from kernels.quality import IsolationForest, QualityBounds, QualitySketch
from kernels.result import Result
from kernels.window import ReferenceProfile, WindowSketch

__all__ = ["ColumnBatch", "IsolationForest", "QualityBounds", "QualitySketch",
           "ReferenceProfile", "Result", "WindowSketch", "evaluate"]
