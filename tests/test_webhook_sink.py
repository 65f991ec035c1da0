"""The generic webhook sink against a real HTTP receiver on 127.0.0.1 that answers on cue."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest

from monitor import config as C
from monitor.sinks.from_config import make_sinks
from monitor.sinks import SinkRejected, SinkUnavailable
from monitor.sinks.webhook import WebhookSink
from tests.test_slack_sink import ALERTS

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec-streamdrift-test"


class Receiver:
    """Records every POST (path, headers, body, time); answers the queued statuses first,
    each after ``delay_s``."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.got: list[tuple[str, dict, bytes, float]] = []
        self.answers: deque = deque()
        rec = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay_s)
                rec.got.append((self.path, dict(self.headers), body, time.monotonic()))
                status, headers = rec.answers.popleft() if rec.answers else (204, {})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/streamdrift"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.stop()


def test_posts_each_alert_once_signed_and_schema_valid(receiver):
    schema = json.loads((ROOT / "schemas" / "alert.schema.json").read_text())
    sink = WebhookSink(receiver.url, signing_secret=SECRET, backoff_s=0.05)
    sink.write(ALERTS)
    sink.write(ALERTS)                                  # a repeated offer sends nothing
    assert [json.loads(b)["alert_id"] for _, _, b, _ in receiver.got] == \
        [a.alert_id for a in ALERTS]
    for _, headers, body, _ in receiver.got:
        jsonschema.validate(json.loads(body), schema)
        assert headers["Idempotency-Key"] == json.loads(body)["alert_id"]
        want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Streamdrift-Signature"] == want
    assert sink.health.delivered == len(ALERTS) and SECRET not in repr(sink)


def test_transient_answers_are_retried_with_the_same_idempotency_key(receiver):
    receiver.answers.extend([(503, {}), (429, {"Retry-After": "1"}), (200, {})])
    sink = WebhookSink(receiver.url, backoff_s=0.05)
    sink.write(ALERTS[:1])
    keys = {h["Idempotency-Key"] for _, h, _, _ in receiver.got}
    assert len(receiver.got) == 3 and keys == {ALERTS[0].alert_id}
    assert receiver.got[2][3] - receiver.got[1][3] >= 1.0      # Retry-After waited out
    assert sink.health.state == "ok" and sink.health.errors == {}   # retried within one offer


def test_5xx_past_the_retries_keeps_the_sink_healthy(receiver):
    receiver.answers.extend([(502, {})] * 3)
    sink = WebhookSink(receiver.url, retries=2, backoff_s=0.05)
    with pytest.raises(SinkUnavailable) as e:
        sink.write(ALERTS[:1])
    assert not isinstance(e.value, SinkRejected) and e.value.kind == "http_502"
    assert sink.health.state == "retrying" and not sink.health.failing
    sink.write(ALERTS[:1])
    assert sink.health.state == "ok"


def test_4xx_is_permanent_and_resumes_when_the_url_file_is_fixed(receiver, tmp_path):
    url_file = tmp_path / "hook-url"
    url_file.write_text(receiver.url + "-old\n")
    receiver.answers.append((404, {}))
    cfg = C.from_dict({"monitor": "loan", "kafka": {"bootstrap": "127.0.0.1:1"},
                       "stream": {"topic": "t"}, "features": {"numeric": ["x"]},
                       "windows": {"size": "1m"}, "reference": {"profile": "/r"},
                       "triggers": {"enabled": False},
                       "webhooks": [{"name": "ops", "url_file": str(url_file), "timeout": "2s"}]})
    (delivery,) = make_sinks(cfg, {"bootstrap.servers": "127.0.0.1:1"})
    delivery.close()
    sink = delivery.sink
    assert sink.name == "ops" and delivery.group_id.endswith("-ops")
    with pytest.raises(SinkRejected) as e:
        sink.write(ALERTS[:1])
    assert e.value.kind == "http_404" and sink.health.failing and len(receiver.got) == 1
    url_file.write_text(receiver.url + "\n")
    sink.write(ALERTS[:1])
    assert [p for p, _, _, _ in receiver.got] == ["/hooks/streamdrift-old", "/hooks/streamdrift"]
    assert not sink.health.failing
