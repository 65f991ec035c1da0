"""The Slack sinks' retries (slack-sdk retry handlers): capped backoff with jitter, 5xx and
transport errors retried, and, before a ``chat.postMessage`` is sent again, a look for the
message the failed attempt may have posted after all (Slack may post before its gateway
fails). The classification of an answer that no retry can mend (a 4xx) is shared with the
generic webhook sink: :func:`monitor.sinks.http_retry.permanent`."""

from __future__ import annotations

import random
import time
import urllib.error
from collections.abc import Sequence
from http.client import HTTPException
from typing import Any

from slack_sdk.http_retry import RetryHandler, RetryIntervalCalculator
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState


class CappedBackoff(RetryIntervalCalculator):
    """``min(cap, base * 2**attempt)`` scaled by a random factor in [0.5, 1]."""

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0) -> None:
        self.base_s, self.cap_s = base_s, cap_s

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return min(self.cap_s, self.base_s * 2 ** current_attempt) * (0.5 + 0.5 * random.random())


class AlreadyPosted(Exception):
    """Reconciliation found the message a lost answer was about."""

    def __init__(self, ts: str) -> None:
        self.ts = ts
        super().__init__(f"already posted as {ts}")


def refused(error: BaseException | None) -> bool:
    """The connection was refused: the request never reached the server."""
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else None
    return isinstance(error, ConnectionRefusedError)


class ReconcilingRetryHandler(RetryHandler):
    """Capped backoff; before a ``chat.postMessage`` is sent again, ``reconcile(request) ->
    ts | None`` looks for the message the failed attempt may have posted after all."""

    def __init__(self, reconcile: Any = None, max_retry_count: int = 8,
                 interval_calculator: RetryIntervalCalculator | None = None) -> None:
        super().__init__(max_retry_count, interval_calculator or CappedBackoff())
        self.reconcile = reconcile

    def _maybe_acted(self, error: Exception | None) -> bool:
        return True

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None,
                                 error: Exception | None = None) -> None:
        time.sleep(self.interval_calculator.calculate_sleep_duration(state.current_attempt))
        state.increment_current_attempt()
        if (self.reconcile is not None and self._maybe_acted(error)
                and request.url.endswith("/chat.postMessage")):
            ts = self.reconcile(request)
            if ts is not None:
                raise AlreadyPosted(ts)
        state.next_attempt_requested = True


class HttpStatusRetryHandler(ReconcilingRetryHandler):
    """Retries 5xx answers (the SDK's own handler covers 500/503 only, and re-sends without
    looking: Slack may have posted before its gateway failed)."""

    def __init__(self, reconcile: Any = None, max_retry_count: int = 8,
                 interval_calculator: RetryIntervalCalculator | None = None,
                 statuses: Sequence[int] = (500, 502, 503, 504)) -> None:
        super().__init__(reconcile, max_retry_count, interval_calculator)
        self.statuses = tuple(statuses)

    def _can_retry(self, *, state: RetryState, request: HttpRequest,
                   response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return response is not None and response.status_code in self.statuses


class TransportRetryHandler(ReconcilingRetryHandler):
    """Timeouts and connection errors; a refused connection never reached Slack, so only the
    others are reconciled."""

    ERRORS = (TimeoutError, urllib.error.URLError, ConnectionError, HTTPException, OSError)

    def _can_retry(self, *, state: RetryState, request: HttpRequest,
                   response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        if response is not None or error is None or isinstance(error, urllib.error.HTTPError):
            return False
        return isinstance(error, self.ERRORS)

    def _maybe_acted(self, error: Exception | None) -> bool:
        return not refused(error)


def retry_handlers(retries: int = 8, base_s: float = 0.5, cap_s: float = 30.0,
                   reconcile: Any = None) -> list[RetryHandler]:
    calc = CappedBackoff(base_s, cap_s)
    return [RateLimitErrorRetryHandler(max_retry_count=retries),
            HttpStatusRetryHandler(reconcile, retries, calc),
            TransportRetryHandler(reconcile, retries, calc)]
