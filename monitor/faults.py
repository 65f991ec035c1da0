"""The fault hook: a hard crash at a named step boundary, for the fault suite.

The code calls :func:`fault_point` at every step boundary (after stage 1's state write,
between partials, after a report, in the sinks ...). Normally that is one dictionary lookup.
With ``STREAMDRIFT_FAULT=<point>:<n>`` in the environment, the ``n``-th visit of ``<point>``
ends the process at once with ``os._exit`` — no ``finally``, no ``atexit``, no flush: what a
``kill -9`` or a power cut leaves behind. Several points may be armed, comma-separated.

``before`` runs just ahead of the crash, only when the point fires: stage 1 uses it to push
the messages it produced so far onto the wire, so that "between partials" really leaves the
first partials delivered and the rest not.

Every point the code knows is listed in :data:`POINTS` (the suite visits each of them).

>>> arm("x.y:2")
>>> fault_point("x.y")  # the first visit passes
>>> visits("x.y")
1
>>> arm("")
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

ENV = "STREAMDRIFT_FAULT"
EXIT_CODE = 86  # what a faulted process exits with, so a test can tell it from a crash

POINTS = {
    "source.after_dead_letter": "stage 1: dead-letter writes acknowledged, state not written",
    "source.between_states": "stage 1: one partition's state written, the next not",
    "source.after_state": "stage 1: state (with its outbox) acknowledged, no partial sent",
    "source.between_partials": "stage 1: the first partial delivered, the others not",
    "source.after_partials": "stage 1: partials acknowledged, outbox not cleared",
    "stage2.before_table_advance": "stage 2: window merged, tables not advanced",
    "stage2.after_report": "stage 2: report and alerts acknowledged",
    "sinks.after_write": "sinks: alert delivered to the sink, offset not committed",
}

_lock = threading.Lock()
_armed: dict[str, int] = {}
_visits: dict[str, int] = {}


def arm(spec: str | None) -> None:
    """Arm the points of ``spec`` (``"point:n,point:n"``); an empty spec disarms all."""
    with _lock:
        _armed.clear()
        _visits.clear()
        for item in filter(None, (s.strip() for s in (spec or "").split(","))):
            name, _, n = item.rpartition(":")
            if not name or not n.isdigit() or int(n) < 1:
                raise ValueError(f"{ENV}: {item!r} is not <point>:<n> with n >= 1")
            _armed[name] = int(n)


def visits(point: str) -> int:
    return _visits.get(point, 0)


def fault_point(point: str, before: Callable[[], object] | None = None) -> None:
    """Count a visit of ``point``; end the process hard if it is armed for this visit."""
    if not _armed:
        return
    with _lock:
        n = _visits[point] = _visits.get(point, 0) + 1
        fire = _armed.get(point) == n
    if fire:
        if before is not None:
            before()
        sys.stderr.write(f"streamdrift: fault injected at {point} (visit {n})\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)


arm(os.environ.get(ENV))
