"""The decoder's last guard: a batch whose decode raised is decoded again without the
messages that make it raise, and those are bad with reason ``undecodable``.

Every known kind of hostile input is handled inside the decoder; this exists so that an
unknown one (a bug) costs one dead-lettered message, never the stage-1 thread. Each message
is first tried alone, so the cost is paid only by the batch that hit the bug.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

UNDECODABLE = "undecodable"


def isolate(decode: Callable[..., Any], values: list, offsets, timestamps_ms) -> Any:
    """``decode(values, offsets, timestamps_ms)`` with each message that makes it raise
    replaced by ``None`` (a tombstone, which is bad), then relabelled ``undecodable``."""
    offsets = np.asarray(offsets, np.int64)
    timestamps_ms = np.asarray(timestamps_ms, np.int64)
    failing: dict[int, str] = {}
    for i, v in enumerate(values):
        try:
            decode([v], offsets[i:i + 1], timestamps_ms[i:i + 1])
        except Exception as e:  # noqa: BLE001
            failing[i] = f"{type(e).__name__}: {str(e)[:200]}"
    log.error("decoder failed on %d message(s) of a batch of %d (sent to the dead-letter "
              "topic as %r): %s", len(failing), len(values), UNDECODABLE,
              next(iter(failing.values()), "the batch only"))
    out = decode([None if i in failing else v for i, v in enumerate(values)], offsets,
                 timestamps_ms)
    bad = [replace(b, reason=UNDECODABLE, error=failing[b.index]) if b.index in failing else b
           for b in out.bad]
    return replace(out, bad=bad)
