"""A Slack-compatible HTTP server on 127.0.0.1 for tests: records everything, misbehaves on cue.

Implements what streamdrift's Slack sink uses: ``auth.test``, ``chat.postMessage`` (with
``metadata``), ``chat.update``, ``conversations.history`` and ``conversations.replies`` (with
``include_all_metadata``), ``conversations.list``, and incoming webhooks
(``/services/...``). Every request is recorded with its arrival time (``time.monotonic()``)
and the answer given.

Faults are queued per API method and consumed one per request:

- ``("status", 500|502|503, retry_after)``: answer that status *without* acting on it
  (429 carries ``Retry-After``);
- ``("status_after", 500|502|503|504)``: act on the request (the message exists), then
  answer that status — a gateway that failed after Slack posted;
- ``("slow", seconds)``: act on the request (the message exists), then answer after
  ``seconds`` — longer than the client's timeout means the answer is lost;
- ``("reset", "before"|"after")``: reset the TCP connection before or after acting on it.

Setting ``token`` changes the token the server accepts (others get ``invalid_auth``);
incoming webhooks answer only ``webhook_path`` (others: 404 ``no_service``, like Slack).
Alertmanager's Slack receiver posts its JSON (``attachments``) to that same endpoint.

``down(seconds)`` closes the listening socket (connection refused) and reopens it on the same
port after ``seconds``.

>>> s = SlackServer(token="xoxb-test").start()
>>> from slack_sdk import WebClient
>>> WebClient(token="xoxb-test", base_url=s.base_url).auth_test()["ok"]
True
>>> s.stop()
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import urllib.parse
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHANNELS = {"#ml-oncall": "C0ONCALL", "ml-oncall": "C0ONCALL", "#other": "C0OTHER"}


@dataclass
class Recorded:
    t: float                      # arrival, time.monotonic()
    method: str
    params: dict[str, Any]
    status: int = 0
    fault: str = ""               # what the server did instead of answering normally
    answered_at: float = 0.0
    authorized: bool = True


@dataclass
class Message:
    ts: str
    channel: str
    text: str
    blocks: list
    metadata: dict | None
    thread_ts: str | None
    edited: int = 0
    history: list = field(default_factory=list)


class SlackServer:
    def __init__(self, token: str = "xoxb-test-token", port: int = 0) -> None:
        self.token = token
        self.port = port
        self.webhook_path = "/services/T000/B000/s3cr3tHookPath"
        self.requests: list[Recorded] = []
        self.messages: list[Message] = []
        self.webhook_posts: list[dict] = []
        self.faults: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ts = int(time.time()) * 1_000_000
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []

    # -- control ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.webhook_path}"

    def start(self) -> "SlackServer":
        server = self

        class Handler(_Handler):
            srv = server

        class HTTPD(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):  # resets are on purpose
                pass

        self._httpd = HTTPD(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for t in self._timers:
            t.cancel()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def down(self, seconds: float) -> None:
        """Refuse connections for ``seconds``, then listen on the same port again."""
        self.stop()
        t = threading.Timer(seconds, self.start)
        t.daemon = True
        self._timers = [t]
        t.start()

    def fail(self, method: str, *faults: tuple) -> None:
        with self._lock:
            self.faults[method].extend(faults)

    # -- views for assertions ---------------------------------------------------------

    def top_level(self, channel: str = "C0ONCALL") -> list[Message]:
        return [m for m in self.messages if m.channel == channel and m.thread_ts is None]

    def replies(self, ts: str) -> list[Message]:
        return [m for m in self.messages if m.thread_ts == ts]

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method]

    # -- API ---------------------------------------------------------------------------

    def _next_ts(self) -> str:
        self._ts += 1
        return f"{self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"

    def _channel(self, name: str | None) -> str | None:
        if name in CHANNELS.values():
            return name
        return CHANNELS.get(name or "")

    def api(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if method == "auth.test":
                return {"ok": True, "url": "https://streamdrift-test.slack.com/", "team": "T",
                        "user": "streamdrift", "team_id": "T000", "user_id": "U0BOT",
                        "bot_id": "B0BOT"}
            if method == "conversations.list":
                names = {v: k for k, v in CHANNELS.items() if not k.startswith("#")}
                names.setdefault("C0OTHER", "other")
                return {"ok": True, "channels": [{"id": c, "name": n} for c, n in names.items()],
                        "response_metadata": {"next_cursor": ""}}
            if method == "chat.postMessage":
                ch = self._channel(p.get("channel"))
                if ch is None:
                    return {"ok": False, "error": "channel_not_found"}
                if not p.get("text") and not p.get("blocks"):
                    return {"ok": False, "error": "no_text"}
                m = Message(ts=self._next_ts(), channel=ch, text=p.get("text", ""),
                            blocks=_json_field(p.get("blocks")) or [],
                            metadata=_json_field(p.get("metadata")),
                            thread_ts=p.get("thread_ts"))
                if m.thread_ts and not any(x.ts == m.thread_ts for x in self.messages):
                    return {"ok": False, "error": "thread_not_found"}
                self.messages.append(m)
                return {"ok": True, "channel": ch, "ts": m.ts,
                        "message": {"text": m.text, "ts": m.ts}}
            if method == "chat.update":
                ch = self._channel(p.get("channel"))
                for m in self.messages:
                    if m.channel == ch and m.ts == p.get("ts"):
                        m.history.append((m.text, m.blocks))
                        m.text = p.get("text", m.text)
                        m.blocks = _json_field(p.get("blocks")) or m.blocks
                        m.edited += 1
                        return {"ok": True, "channel": ch, "ts": m.ts, "text": m.text}
                return {"ok": False, "error": "message_not_found"}
            if method in ("conversations.history", "conversations.replies"):
                ch = p.get("channel")
                if ch not in CHANNELS.values():
                    return {"ok": False, "error": "channel_not_found"}
                meta = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
                if method == "conversations.history":
                    msgs = [m for m in self.messages if m.channel == ch and m.thread_ts is None]
                    msgs.sort(key=lambda m: m.ts, reverse=True)
                    if p.get("oldest"):
                        msgs = [m for m in msgs if float(m.ts) > float(p["oldest"])]
                else:
                    msgs = [m for m in self.messages
                            if m.channel == ch and (m.ts == p.get("ts") or m.thread_ts == p.get("ts"))]
                    msgs.sort(key=lambda m: m.ts)
                limit = int(p.get("limit") or 100)
                start = int(p.get("cursor") or 0)
                page = msgs[start:start + limit]
                nxt = str(start + limit) if start + limit < len(msgs) else ""
                out = []
                for m in page:
                    d = {"type": "message", "ts": m.ts, "text": m.text, "blocks": m.blocks}
                    if m.thread_ts:
                        d["thread_ts"] = m.thread_ts
                    if meta and m.metadata:
                        d["metadata"] = m.metadata
                    out.append(d)
                return {"ok": True, "messages": out, "has_more": bool(nxt),
                        "response_metadata": {"next_cursor": nxt}}
            return {"ok": False, "error": "unknown_method"}


def _json_field(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


class _Handler(BaseHTTPRequestHandler):
    srv: SlackServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        srv = self.srv
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        params: dict[str, Any] = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        ctype = self.headers.get("Content-Type", "")
        if raw and "json" in ctype:
            params.update(json.loads(raw))
        elif raw:
            params.update({k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()})
        rec = Recorded(t=time.monotonic(), method="", params=params)
        if url.path.startswith("/services/"):
            rec.method = "webhook"
        else:
            rec.method = url.path.rsplit("/", 1)[-1]
            rec.authorized = self.headers.get("Authorization") == f"Bearer {srv.token}"
        with srv._lock:
            srv.requests.append(rec)
            fault = srv.faults[rec.method].popleft() if srv.faults[rec.method] else None
        if fault and fault[0] == "status":
            status, retry_after = fault[1], (fault[2] if len(fault) > 2 else None)
            rec.fault = f"status {status}" + (f" retry-after {retry_after}"
                                              if retry_after is not None else "")
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            body = {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}
            return self._answer(rec, status, body, headers)
        if fault and fault[0] == "reset" and fault[1] == "before":
            rec.fault = "reset before"
            return self._reset()
        if rec.method == "webhook":
            if url.path != srv.webhook_path:
                return self._answer(rec, 404, "no_service", {})
            with srv._lock:
                srv.webhook_posts.append(params)
            result: Any = "ok"
        elif not rec.authorized:
            result = {"ok": False, "error": "invalid_auth"}
        else:
            result = srv.api(rec.method, params)
        if fault and fault[0] == "reset":
            rec.fault = "reset after"
            return self._reset()
        if fault and fault[0] == "slow":
            rec.fault = f"slow {fault[1]}"
            time.sleep(fault[1])
        if fault and fault[0] == "status_after":
            rec.fault = f"status_after {fault[1]}"
            return self._answer(rec, fault[1], {"ok": False, "error": "fatal_error"}, {})
        self._answer(rec, 200, result, {})

    def _answer(self, rec: Recorded, status: int, body: Any, headers: dict[str, str]) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str)
                             else "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass
        rec.status, rec.answered_at = status, time.monotonic()

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
