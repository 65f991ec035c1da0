"""The numba options every kernel is compiled with, in one place.

``nogil``: stage 1 runs kernels in an executor thread while the event loop keeps its
heartbeats; ``cache``: compiled code is kept in ``__pycache__`` between processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba as nb

F = TypeVar("F", bound=Callable[..., Any])

OPTIONS: dict[str, Any] = {"nogil": True, "cache": True}


def kernel(fn: F) -> F:
    """Compile ``fn`` with :data:`OPTIONS`."""
    return nb.njit(**OPTIONS)(fn)  # type: ignore[no-any-return]


def inline(fn: F) -> F:
    """Compile ``fn`` with :data:`OPTIONS`, inlined into the kernels that call it."""
    return nb.njit(**OPTIONS, inline="always")(fn)  # type: ignore[no-any-return]
