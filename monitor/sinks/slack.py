"""Slack sink: each alert id posted exactly once, updates and resolutions as thread replies.

Delivery through slack-sdk's ``WebClient`` (bot token, ``chat.postMessage`` with Block Kit)
and its retry handlers, which by default retry connection errors only. Here:

- 429: :class:`RateLimitErrorRetryHandler` sleeps ``Retry-After`` (plus jitter) before the
  next request (a rate-limited request was not acted on);
- 500/502/503/504: :class:`HttpStatusRetryHandler`; timeouts, resets, refused connections:
  :class:`TransportRetryHandler`; both with capped exponential backoff. A refused connection
  never reached Slack and is simply retried. A 5xx, a timeout or a reset may come *after*
  Slack acted on the request, so before re-sending a ``chat.postMessage`` both handlers
  *reconcile*: they look the alert id up in the channel (``conversations.history`` /
  ``.replies`` with ``include_all_metadata``; every message carries the id in its
  ``metadata``) and stop if the message is there.
- permanent answers (:data:`PERMANENT`: ``invalid_auth``, ``channel_not_found``,
  ``not_in_channel``, ...; any other 4xx but 429) are not retried:
  :class:`~monitor.sinks.SinkRejected` marks the sink failing in ``/health`` at once. The next
  offer reads the token again (a rotated token file is picked up), checks it with
  ``auth.test`` before posting anything, and delivers once the configuration is right.

When the handlers give up, :meth:`SlackSink.write` raises
:class:`~monitor.sinks.SinkUnavailable`; the delivery loop has not moved the alerts-topic
offset and calls again later. After a start, alerts are looked up before they are sent until
one is not found (they arrive in topic order, so the rest were not sent either), and so is
every alert whose earlier attempt ended in doubt: a process killed after Slack accepted but
before the offset moved does not post twice.

Secrets: the token (or webhook URL) comes from the environment or a file (anything with
``reveal()``, or a string read from there); slack-sdk's own loggers are replaced by one that
redacts it (the webhook client logs its URL).

Incoming webhooks (:class:`SlackWebhookSink`) are the simpler alternative: no token, no
threads, no lookups — a send whose answer was lost may be repeated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http.client import HTTPException
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.webhook import WebhookClient

from monitor.records import Alert
from monitor.sinks import SinkHealth, SinkRejected, SinkUnavailable
from monitor.sinks.http_retry import SeenIds, permanent
from monitor.sinks.slack_blocks import mark_resolved, render, window_text
from monitor.sinks.slack_retry import (  # noqa: F401  (AlreadyPosted, refused: the sink's API)
    AlreadyPosted, CappedBackoff, ReconcilingRetryHandler, refused, retry_handlers)

METADATA_EVENT = "streamdrift_alert"
#: Slack error codes that the same request will meet again until someone changes the config
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked",
                         "token_expired", "no_permission", "missing_scope", "not_allowed_token_type",
                         "team_access_not_granted", "ekm_access_denied", "org_login_required"})
PERMANENT = AUTH_ERRORS | {"channel_not_found", "not_in_channel", "is_archived",
                           "restricted_action", "restricted_action_read_only_channel",
                           "restricted_action_thread_only_channel", "cannot_reply_to_message"}
log = logging.getLogger("streamdrift.sinks.slack")


class SecretLike(Protocol):
    def reveal(self) -> str: ...


def _reveal(s: str | SecretLike) -> str:
    return s if isinstance(s, str) else s.reveal()


class RedactSecrets(logging.Filter):
    """Replaces every given secret in a record (message, args, traceback) with ``***``."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def _clean(self, s: str) -> str:
        for secret in self.secrets:
            s = s.replace(secret, "***")
        return s

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._clean(record.getMessage()), ()
        if record.exc_info:
            record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def redacting_logger(name: str, *secrets: str) -> logging.Logger:
    lg = logging.getLogger(name)
    lg.filters = [f for f in lg.filters if not isinstance(f, RedactSecrets)]
    lg.addFilter(RedactSecrets(*secrets))
    return lg


# -- the sink ---------------------------------------------------------------------------

class SlackSink:
    """Posts alert events to one channel with a bot token; see the module text.

    ``token``: a ``Secret`` (``reveal()``) or the token string read from the environment or a
    file. ``channel``: an id (``C0123``) or a name (resolved once with
    ``conversations.list``). ``runbook_url`` may hold ``{monitor}``, ``{check}``,
    ``{feature}``. ``timeout_s`` is the HTTP timeout; ``retries``/``backoff_cap_s`` bound the
    SDK's retries before :class:`SinkUnavailable` hands control back to the delivery loop;
    ``rejected_retry_s``: how long the loop waits after a permanent answer before checking
    whether the configuration was fixed.
    """

    name = "slack"

    def __init__(self, token: str | SecretLike, channel: str, *, base_url: str | None = None,
                 runbook_url: str | None = None, mention: str | None = None,
                 timeout_s: float = 10.0, retries: int = 8, backoff_base_s: float = 0.5,
                 backoff_cap_s: float = 30.0, lookup_pages: int = 10,
                 rejected_retry_s: float = 10.0) -> None:
        self.channel = channel
        self.base_url = base_url
        self.runbook_url = runbook_url
        self.mention = mention
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.lookup_pages = lookup_pages
        self.rejected_retry_s = rejected_retry_s
        self.health = SinkHealth(self.name)
        self._token = token
        secret = _reveal(token)
        self._client = WebClient(
            token=secret, base_url=base_url or WebClient.BASE_URL,
            timeout=timeout_s,  # type: ignore[arg-type]  # urllib takes float seconds
            logger=redacting_logger("streamdrift.sinks.slack.sdk", secret),
            retry_handlers=retry_handlers(retries, backoff_base_s, backoff_cap_s,
                                          self._reconcile_request))
        del secret
        self._rejected: str | None = None      # the permanent error last met, until fixed
        self._channel_id: str | None = None
        self._done: SeenIds[str] = SeenIds()                   # alert id -> ts
        self._roots: dict[str, tuple[str, list]] = {}           # alert id -> (text, blocks)
        self._in_doubt: set[str] = set()
        self._verify_next = True   # a previous process may have posted the alert at our offset

    def __repr__(self) -> str:
        return f"SlackSink(channel={self.channel!r}, base_url={self.base_url!r})"

    # public

    def write(self, alerts: Sequence[Alert]) -> None:
        for a in alerts:
            try:
                self.deliver(a)
            except SinkUnavailable as e:
                self.health.record(e)
                raise
            self.health.delivered_one()

    def deliver(self, alert: Alert) -> str:
        """Post ``alert`` unless it is already in the channel; returns its message ts."""
        done = self._done.get(alert.alert_id)
        if done is not None:
            return done
        try:
            if self._rejected is not None:
                self._recheck_config()
            ts = self._deliver(alert)
            self._rejected = None
            return ts
        except SlackApiError as e:
            self._in_doubt.add(alert.alert_id)
            status = e.response.status_code
            err = e.response.get("error") if isinstance(e.response.data, dict) else None
            if err in PERMANENT or (400 <= status < 500 and status != 429):
                self._rejected = err or f"http_{status}"
                raise SinkRejected(self.name, self._rejected,
                                   f"Slack refused alert {alert.alert_id} "
                                   f"({_advice(self._rejected, self.channel)})",
                                   self.rejected_retry_s) from None
            raise SinkUnavailable(self.name, f"HTTP {status} {err or ''} for alert "
                                  f"{alert.alert_id}".replace("  ", " "),
                                  min(self.backoff_cap_s, 5.0),
                                  kind=f"http_{status}" if status != 200 or not err
                                  else str(err)) from None
        except (OSError, HTTPException) as e:
            self._in_doubt.add(alert.alert_id)
            raise SinkUnavailable(self.name, f"{type(e).__name__} for alert {alert.alert_id}",
                                  min(self.backoff_cap_s, 5.0), kind="transport") from None

    # internals

    def _recheck_config(self) -> None:
        """After a permanent answer: read the token again and, for an auth error, test it
        with ``auth.test`` before anything is posted (raises SlackApiError if still bad)."""
        secret = _reveal(self._token)
        if secret != self._client.token:
            redacting_logger("streamdrift.sinks.slack.sdk", secret, self._client.token or "")
            self._client.token = secret
        del secret
        if self._rejected in AUTH_ERRORS:
            self._client.auth_test()
        else:
            self._channel_id = None   # the channel may have been created / the bot invited

    def _deliver(self, alert: Alert) -> str:
        channel = self._channel_ident()
        parent_ts = None
        if alert.thread_alert_id:
            parent_ts = self._done.get(alert.thread_alert_id) or self._find(alert.thread_alert_id)
        ts = None
        if self._verify_next or alert.alert_id in self._in_doubt:
            ts = self._find(alert.alert_id, parent_ts)
        if ts is None:
            # alerts are offered in topic order: once one is missing, the rest are too
            self._verify_next = False
            text, blocks = render(alert, self.runbook_url, self.mention)
            meta = {"event_type": METADATA_EVENT, "event_payload": {
                "alert_id": alert.alert_id, "kind": alert.kind, "monitor": alert.monitor,
                "window_start_ms": alert.window_start_ms, "keys": ",".join(alert.keys)[:1000]}}
            try:
                resp = self._client.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, metadata=meta,
                    thread_ts=parent_ts, unfurl_links=False, unfurl_media=False)
                ts = resp["ts"]
            except AlreadyPosted as e:
                ts = e.ts
            if alert.kind == "firing":
                self._roots[alert.alert_id] = (text, blocks)
        if alert.kind == "resolved" and alert.thread_resolved and parent_ts:
            self._mark_root(alert, parent_ts)
        self._in_doubt.discard(alert.alert_id)
        self._done.add(alert.alert_id, ts)
        return ts

    def _mark_root(self, alert: Alert, root_ts: str) -> None:
        root = self._roots.pop(alert.thread_alert_id or "", None)
        if root is None:
            msg = self._find_message(alert.thread_alert_id or "", None)
            if msg is None:
                return
            root = (msg.get("text", ""), msg.get("blocks") or [])
        text, blocks = mark_resolved(*root, window_text(alert.window_start_ms, alert.window_end_ms))
        self._client.chat_update(channel=self._channel_ident(), ts=root_ts, text=text,
                                 blocks=blocks)

    def _channel_ident(self) -> str:
        if self._channel_id is None:
            name = self.channel.lstrip("#")
            if self.channel[:1] in "CGD" and self.channel.isalnum() and self.channel.isupper():
                self._channel_id = self.channel
            else:
                cursor = None
                while self._channel_id is None:
                    r = self._client.conversations_list(
                        types="public_channel,private_channel", limit=1000, cursor=cursor,
                        exclude_archived=True)
                    for c in r["channels"]:
                        if c["name"] == name:
                            self._channel_id = c["id"]
                    cursor = (r.get("response_metadata") or {}).get("next_cursor")
                    if not cursor and self._channel_id is None:
                        self._rejected = "channel_not_found"
                        raise SinkRejected(self.name, "channel_not_found",
                                           _advice("channel_not_found", self.channel),
                                           self.rejected_retry_s)
        return self._channel_id

    def _find_message(self, alert_id: str, parent_ts: str | None) -> dict | None:
        """The message carrying ``alert_id`` in its metadata (top level, or in a thread)."""
        channel, cursor = self._channel_ident(), None
        for _ in range(self.lookup_pages):
            if parent_ts:
                r = self._client.conversations_replies(channel=channel, ts=parent_ts, limit=200,
                                                       include_all_metadata=True, cursor=cursor)
            else:
                r = self._client.conversations_history(channel=channel, limit=200,
                                                       include_all_metadata=True, cursor=cursor)
            for m in r.get("messages") or []:
                md = m.get("metadata") or {}
                if (md.get("event_type") == METADATA_EVENT
                        and (md.get("event_payload") or {}).get("alert_id") == alert_id):
                    return m
            cursor = (r.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    def _find(self, alert_id: str, parent_ts: str | None = None) -> str | None:
        m = self._find_message(alert_id, parent_ts)
        if m is not None:
            log.info("alert %s was already in the channel (ts %s): not posting it again",
                     alert_id, m["ts"])
            return m["ts"]
        return None

    def _reconcile_request(self, request: HttpRequest) -> str | None:
        try:
            body = json.loads(request.data or b"{}")
        except ValueError:
            return None
        alert_id = ((body.get("metadata") or {}).get("event_payload") or {}).get("alert_id")
        if not alert_id:
            return None
        return self._find(alert_id, body.get("thread_ts"))


def _advice(kind: str, channel: str | None = None) -> str:
    """One line saying what to fix for a permanent Slack answer."""
    if kind in AUTH_ERRORS:
        return ("the token was rejected or lacks a scope (chat:write, channels:history): "
                "fix slack.token_env / token_file; delivery resumes by itself")
    if kind in ("channel_not_found", "not_in_channel", "is_archived"):
        return (f"channel {channel} unknown, archived, or the bot is not in it: invite the bot "
                "or fix slack.channel")
    if kind in ("no_service", "invalid_token", "no_team", "http_403", "http_404", "http_410"):
        return "the webhook URL was rejected: fix slack.webhook_url_env / webhook_url_file"
    return "Slack answered with a permanent error; see its documentation for this code"


class SlackWebhookSink:
    """Incoming webhook: the simpler setup. No threads (replies are posted as new messages),
    no lookups: a send whose answer was lost is repeated (at least once, not exactly once)."""

    name = "slack-webhook"

    def __init__(self, webhook_url: str | SecretLike, *, runbook_url: str | None = None,
                 mention: str | None = None, timeout_s: float = 10.0, retries: int = 8,
                 backoff_base_s: float = 0.5, backoff_cap_s: float = 30.0,
                 rejected_retry_s: float = 10.0) -> None:
        self.runbook_url = runbook_url
        self.mention = mention
        self.timeout_s = timeout_s
        self.backoff_cap_s = backoff_cap_s
        self.retries, self.backoff_base_s = retries, backoff_base_s
        self.rejected_retry_s = rejected_retry_s
        self.health = SinkHealth(self.name)
        self._url = webhook_url
        self._client = self._make_client()
        self._rejected = False
        self._done: SeenIds[None] = SeenIds()

    def _make_client(self) -> WebhookClient:
        url = _reveal(self._url)   # read again: a fixed URL file is picked up
        return WebhookClient(
            url, timeout=self.timeout_s,  # type: ignore[arg-type]
            logger=redacting_logger("streamdrift.sinks.slack.webhook", url),
            retry_handlers=retry_handlers(self.retries, self.backoff_base_s, self.backoff_cap_s))

    def __repr__(self) -> str:
        return "SlackWebhookSink(webhook_url=***)"

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

    def _send(self, a: Alert) -> None:
        if self._rejected:
            self._client = self._make_client()
        text, blocks = render(a, self.runbook_url, self.mention)
        try:
            r = self._client.send(text=text, blocks=blocks)
        except (OSError, HTTPException) as e:
            raise SinkUnavailable(self.name, f"{type(e).__name__} for alert {a.alert_id}",
                                  min(self.backoff_cap_s, 5.0), kind="transport") from None
        if permanent(r.status_code):
            self._rejected = True
            body = (r.body or "").strip()
            kind = body if body.replace("_", "").isalpha() and len(body) < 40 else \
                f"http_{r.status_code}"
            raise SinkRejected(self.name, kind, f"HTTP {r.status_code} for alert {a.alert_id} "
                               f"({_advice(kind)})", self.rejected_retry_s)
        if r.status_code != 200:
            raise SinkUnavailable(self.name, f"HTTP {r.status_code} for alert {a.alert_id}",
                                  min(self.backoff_cap_s, 5.0), kind=f"http_{r.status_code}")
        self._rejected = False
        self._done.add(a.alert_id)
