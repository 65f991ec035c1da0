"""Generic webhook sink: each alert event POSTed as JSON to a URL the user runs.

The body is the alert exactly as on the alerts topic (``schemas/alert.schema.json``). Headers:
``Idempotency-Key: <alert_id>`` (the same id on every attempt: the receiver drops repeats, so
a crash between its answer and our offset commit delivers nothing twice), and, when a signing
secret is configured, ``X-Streamdrift-Signature: sha256=<hex HMAC of the body>`` so the
receiver can tell the monitor from anyone else on the network.

Answers: 2xx accepted; 408, 425, 429 (``Retry-After`` honoured) and 5xx are retried with
capped backoff, then :class:`~monitor.sinks.SinkUnavailable`; any other 4xx is a permanent
answer (:class:`~monitor.sinks.SinkRejected`): the sink's health fails at once and the next
offer, after ``rejected_retry_s``, reads the URL and secret again (a fixed file is picked up).

>>> sign(b'{"a":1}', "s3cret")   # what a receiver recomputes over the raw body
'sha256=5910e62016ef5034272c926c27071992a465c2335cecf41851bda071577f4f6d'
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.client import HTTPException
from typing import Protocol

import orjson

from monitor.records import Alert
from monitor.sinks import SinkHealth, SinkRejected, SinkUnavailable
from monitor.sinks.http_retry import SeenIds, permanent



class SecretLike(Protocol):
    def reveal(self) -> str: ...


def _reveal(s: str | SecretLike | None) -> str | None:
    return s if s is None or isinstance(s, str) else s.reveal()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink:
    """POSTs alert events to ``url`` (a string or a ``Secret``: URLs often carry tokens).

    ``name`` tells several webhooks apart in ``/health`` and ``/metrics``.
    """

    def __init__(self, url: str | SecretLike, *, name: str = "webhook",
                 signing_secret: str | SecretLike | None = None, timeout_s: float = 10.0,
                 retries: int = 4, backoff_s: float = 0.5, backoff_cap_s: float = 30.0,
                 rejected_retry_s: float = 10.0) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self.rejected_retry_s = rejected_retry_s
        self.health = SinkHealth(name)
        self._url, self._secret = url, signing_secret
        self._done: SeenIds[None] = SeenIds()

    def __repr__(self) -> str:
        return f"WebhookSink(name={self.name!r}, url=***)"

    def write(self, alerts: Sequence[Alert]) -> None:
        for a in alerts:
            if a.alert_id in self._done:
                continue
            try:
                self._send(a)
            except SinkUnavailable as e:
                self.health.record(e)
                raise
            self.health.delivered_one()
            self._done.add(a.alert_id)

    def _send(self, a: Alert) -> None:
        url, secret = _reveal(self._url), _reveal(self._secret)   # read now: files rotate
        assert url is not None
        body = orjson.dumps(a.to_dict())
        headers = {"Content-Type": "application/json", "Idempotency-Key": a.alert_id,
                   "User-Agent": "streamdrift"}
        if secret:
            headers["X-Streamdrift-Signature"] = sign(body, secret)
        del secret
        last, kind, wait = "", "transport", 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(wait or min(self.backoff_cap_s, self.backoff_s * 2 ** (attempt - 1)))
            wait = 0.0
            req = urllib.request.Request(url, data=body, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    r.read()
                    return
            except urllib.error.HTTPError as e:
                code = e.code
                if permanent(code):
                    raise SinkRejected(self.name, f"http_{code}", f"the webhook refused alert "
                                       f"{a.alert_id}: fix the URL or the receiver",
                                       self.rejected_retry_s) from None
                last, kind = f"HTTP {code}", f"http_{code}"
                ra = e.headers.get("Retry-After") if e.headers else None
                if ra and ra.strip().isdigit():
                    wait = min(self.backoff_cap_s, float(ra))
            except (OSError, HTTPException) as e:
                last, kind = type(e).__name__, "transport"
        raise SinkUnavailable(self.name, f"{last} for alert {a.alert_id} after "
                              f"{self.retries + 1} attempts", min(self.backoff_cap_s, 5.0),
                              kind=kind)
