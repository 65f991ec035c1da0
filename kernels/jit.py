"""The numba options every kernel is compiled with, in one place.

``nogil``: stage 1 runs kernels in an executor thread while the event loop keeps its
heartbeats; ``cache``: compiled code is kept in ``__pycache__`` between processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba as nb

F = TypeVar("F", bound=Callable[..., Any])

#: a scalar argument or result of a compiled kernel: numba types it from the call (int64,
#: float64, uint64, a numpy scalar), so Python's int / float would say less than it is
Scalar = Any
#: the typing context, arguments and LLVM builder numba hands an ``@intrinsic``
Numba = Any

OPTIONS: dict[str, Any] = {"nogil": True, "cache": True}


def kernel(fn: F) -> F:
    """Compile ``fn`` with :data:`OPTIONS`."""
    return nb.njit(**OPTIONS)(fn)  # type: ignore[no-any-return]


def inline(fn: F) -> F:
    """Compile ``fn`` with :data:`OPTIONS`, inlined into the kernels that call it."""
    return nb.njit(**OPTIONS, inline="always")(fn)  # type: ignore[no-any-return]
