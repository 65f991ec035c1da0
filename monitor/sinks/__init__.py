"""Sinks: where alerts go after the alerts topic (Slack, the retraining-trigger topic).

Every sink has one verb, ``write(alerts)``: deliver these alerts in order, or raise
:class:`SinkUnavailable` carrying how long to wait before trying again. The delivery loop
(:mod:`monitor.sinks.delivery`) reads the alerts topic, calls ``write`` and moves the topic
offset only after the sink accepted, so an alert survives a sink outage or a crash; each sink
makes a repeated ``write`` of the same alert id harmless (Slack: looks the id up before
re-sending; triggers: a deterministic idempotency key).

>>> e = SinkUnavailable("slack", "HTTP 503 after 8 attempts", retry_in_s=5.0)
>>> str(e), e.retry_in_s
('slack: HTTP 503 after 8 attempts (retrying in 5.0s)', 5.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monitor.stage2.alerts import Alert
from monitor.errors import StreamdriftError


class SinkUnavailable(StreamdriftError):
    """The sink could not take the alert now; nothing was committed. Try again later."""

    def __init__(self, sink: str, message: str, retry_in_s: float = 1.0) -> None:
        self.sink = sink
        self.retry_in_s = retry_in_s
        super().__init__(f"{sink}: {message} (retrying in {retry_in_s:.1f}s)")


class AlertSink(Protocol):
    name: str

    def write(self, alerts: Sequence[Alert]) -> None: ...


__all__ = ["AlertSink", "SinkUnavailable"]
