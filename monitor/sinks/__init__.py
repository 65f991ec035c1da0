"""Sinks: where alerts go after the alerts topic (Slack, Alertmanager, retraining triggers).

Every sink has one verb, ``write(alerts)``: deliver these alerts in order, or raise
:class:`SinkUnavailable` carrying how long to wait before trying again. The delivery loop
(:mod:`monitor.sinks.delivery`) reads the alerts topic, calls ``write`` and moves the topic
offset only after the sink accepted, so an alert survives a sink outage or a crash; each sink
makes a repeated ``write`` of the same alert id harmless (Slack: looks the id up before
re-sending; triggers: a deterministic idempotency key).

A *permanent* answer (a revoked token, an unknown channel, a 4xx from a webhook) is a
:class:`SinkRejected`: the sink does not hammer the service with the same request; it marks
its :class:`SinkHealth` failing at once (``/health`` fails and names it, ``/metrics`` counts it
by kind), the alert stays on the alerts topic, and the next offer first checks whether the
configuration was fixed (secrets are read again), then delivers.

>>> e = SinkUnavailable("slack", "HTTP 503 after 8 attempts", retry_in_s=5.0)
>>> str(e), e.retry_in_s
('slack: HTTP 503 after 8 attempts (retrying in 5.0s)', 5.0)
>>> h = SinkHealth("slack")
>>> h.record(SinkRejected("slack", "invalid_auth", "the token was rejected"))
>>> h.failing, h.error_kind, h.errors
(True, 'invalid_auth', {'invalid_auth': 1})
>>> h.delivered_one(); h.failing, h.state
(False, 'ok')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from monitor.errors import StreamdriftError
from monitor.records import Alert


class SinkUnavailable(StreamdriftError):
    """The sink could not take the alert now; nothing was committed. Try again later."""

    def __init__(self, sink: str, message: str, retry_in_s: float = 1.0,
                 kind: str = "unavailable") -> None:
        self.sink = sink
        self.retry_in_s = retry_in_s
        self.kind = kind
        super().__init__(f"{sink}: {message} (retrying in {retry_in_s:.1f}s)")


class SinkRejected(SinkUnavailable):
    """A permanent answer: the same request will fail the same way until someone fixes the
    configuration (``kind``: the service's error code, e.g. ``invalid_auth``, ``http_404``)."""

    def __init__(self, sink: str, kind: str, message: str, retry_in_s: float = 30.0) -> None:
        super().__init__(sink, f"{kind}: {message}", retry_in_s, kind)


class SinkHealth:
    """What ``/health`` and ``/metrics`` read about one sink; updated by the sink itself.

    ``state``: ``ok``; ``retrying`` (transient errors, being retried: healthy); ``failing``
    (a permanent answer: unhealthy until a delivery succeeds). ``errors`` counts every error
    by kind since start.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "ok"
        self.error_kind: str | None = None
        self.last_error: str | None = None
        self.since = time.time()
        self.delivered = 0
        self.errors: dict[str, int] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SinkHealth({self.name!r}, state={self.state!r}, error_kind={self.error_kind!r})"

    @property
    def failing(self) -> bool:
        return self.state == "failing"

    def delivered_one(self) -> None:
        with self._lock:
            self.delivered += 1
            if self.state != "ok":
                self.state, self.error_kind, self.since = "ok", None, time.time()

    def recovered(self) -> None:
        """A call succeeded that was not a delivery (a re-send, a probe)."""
        with self._lock:
            if self.state != "ok":
                self.state, self.error_kind, self.since = "ok", None, time.time()

    def record(self, error: SinkUnavailable) -> None:
        kind = error.kind
        state = "failing" if isinstance(error, SinkRejected) else "retrying"
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if state != self.state or kind != self.error_kind:
                self.since = time.time()
            self.state, self.error_kind, self.last_error = state, kind, str(error)

    def to_dict(self) -> dict[str, Any]:
        return {"sink": self.name, "state": self.state, "error_kind": self.error_kind,
                "last_error": self.last_error, "since": self.since,
                "delivered": self.delivered, "errors": dict(self.errors)}


class AlertSink(Protocol):
    name: str
    health: SinkHealth

    def write(self, alerts: Sequence[Alert]) -> None: ...


__all__ = ["AlertSink", "SinkHealth", "SinkRejected", "SinkUnavailable"]
