"""Stage 1's counters for /metrics (:class:`SourceStats`), kept by
:class:`~monitor.stage1.source.SourceStage` and summed over its child processes by
:mod:`monitor.workers`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SourceStats:
    """Counters for /metrics; plain ints, read without locks (a torn read is harmless)."""

    events_in: int = 0
    bad_events: dict[str, int] = field(default_factory=dict)
    partials_sent: int = 0
    batches: int = 0
    decode_fallback_messages: int = 0  # JSON messages the compiled scanner left to the slow path
    consumer_lag: dict[int, int] = field(default_factory=dict)
    watermark_delay_ms: dict[int, int] = field(default_factory=dict)
