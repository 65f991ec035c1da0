"""streamdrift kernels: numba sketches and drift / fairness statistics.

Arrays in, arrays out. ``import kernels`` needs neither Kafka nor Faust.
"""

from kernels.batch import ColumnBatch

__all__ = ["ColumnBatch"]
