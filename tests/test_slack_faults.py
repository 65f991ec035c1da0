"""Slack's answers that must not be retried blindly, and names that must not become markup.

The real slack-sdk client against tests/slack_server.py: a 5xx answered *after* Slack posted
is reconciled (one message, never two); a permanent answer (bad token, unknown channel, a 4xx
from a webhook) fails the sink's health at once, is not hammered, keeps the alert, and
delivery resumes as soon as the secret file is fixed; data-borne names are escaped.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from monitor.sinks import SinkRejected, SinkUnavailable
from monitor.sinks.slack import SlackSink, SlackWebhookSink
from monitor.sinks.slack_blocks import render
from tests.slack_server import SlackServer
from tests.test_slack_sink import (
    ALERTS,
    TOKEN,
    assert_delivered_once,
    deliver_all,
    make_sink,
)


@pytest.fixture()
def server():
    s = SlackServer(token=TOKEN).start()
    yield s
    s.stop()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_after_slack_posted_is_looked_up_not_posted_again(server, status):
    """The gateway fails after Slack stored the message: the retry looks the alert id up
    first and finds it, so the channel holds it once."""
    sink = make_sink(server)
    deliver_all(sink, ALERTS[:1])
    server.fail("chat.postMessage", ("status_after", status))
    deliver_all(sink, ALERTS[1:3])
    assert_delivered_once(server, ALERTS[:3])
    faulted = [r for r in server.calls("chat.postMessage") if r.fault.startswith("status_after")]
    assert len(faulted) == 1 and faulted[0].status == status


def test_invalid_token_fails_health_at_once_and_resumes_when_the_file_is_fixed(server,
                                                                              tmp_path):
    token_file = tmp_path / "slack-token"
    token_file.write_text("xoxb-revoked-token\n")

    class FileSecret:
        def reveal(self) -> str:
            return token_file.read_text().strip()

    sink = SlackSink(FileSecret(), "#ml-oncall", base_url=server.base_url, timeout_s=1.0,
                     retries=6, backoff_base_s=0.05, backoff_cap_s=0.4, rejected_retry_s=0.1)
    t0 = time.monotonic()
    with pytest.raises(SinkRejected) as e:
        sink.write(ALERTS[:1])
    assert time.monotonic() - t0 < 3.0                       # no retry storm first
    assert e.value.kind == "invalid_auth" and "slack.token_env" in str(e.value)
    assert sink.health.failing and sink.health.error_kind == "invalid_auth"
    assert len(server.requests) == 1                         # one answer was enough
    # offered again while still wrong: checked with auth.test, nothing is posted
    for _ in range(3):
        with pytest.raises(SinkRejected):
            sink.write(ALERTS[:1])
    assert [r.method for r in server.requests[1:]] == ["auth.test"] * 3
    assert sink.health.errors == {"invalid_auth": 4} and not server.messages
    token_file.write_text(TOKEN + "\n")                       # the operator fixes the file
    deliver_all(sink, ALERTS[:4])
    assert_delivered_once(server, ALERTS[:4])
    assert not sink.health.failing and sink.health.delivered == 4


@pytest.mark.parametrize("channel", ["#no-such-channel", "C0MISSING"])
def test_unknown_channel_is_permanent(server, channel):
    sink = make_sink(server, rejected_retry_s=0.1)
    sink.channel = channel
    with pytest.raises(SinkRejected) as e:
        sink.write(ALERTS[:1])
    assert e.value.kind == "channel_not_found" and sink.health.failing
    assert channel in str(e.value)
    n = len(server.requests)
    assert n <= 2, [r.method for r in server.requests]       # not retried by the SDK
    sink.channel = "#ml-oncall"        # what a fixed config does after a restart
    sink._channel_id = None
    deliver_all(sink, ALERTS[:1])
    assert_delivered_once(server, ALERTS[:1])
    assert not sink.health.failing


def test_webhook_4xx_is_permanent_and_resumes(server, tmp_path):
    url_file = tmp_path / "hook"
    url_file.write_text(server.webhook_url.replace("s3cr3tHookPath", "revoked"))

    class FileSecret:
        def reveal(self) -> str:
            return url_file.read_text().strip()

    sink = SlackWebhookSink(FileSecret(), timeout_s=1.0, backoff_base_s=0.05,
                            backoff_cap_s=0.4, rejected_retry_s=0.1)
    with pytest.raises(SinkRejected) as e:
        sink.write(ALERTS[:1])
    assert e.value.kind == "no_service" and sink.health.failing
    assert len(server.calls("webhook")) == 1 and not server.webhook_posts
    url_file.write_text(server.webhook_url)
    deliver_all(sink, ALERTS[:2])
    assert len(server.webhook_posts) == 2 and not sink.health.failing
    assert "revoked" not in repr(sink) and "s3cr3t" not in repr(sink)


def test_transient_errors_keep_the_sink_healthy(server):
    sink = make_sink(server, retries=1)
    server.fail("chat.postMessage", ("status", 503), ("status", 503))
    with pytest.raises(SinkUnavailable) as e:
        sink.write(ALERTS[:1])
    assert not isinstance(e.value, SinkRejected)
    assert not sink.health.failing and sink.health.state == "retrying"
    assert sink.health.errors == {"http_503": 1}
    deliver_all(sink, ALERTS[:1])
    assert sink.health.state == "ok"


HOSTILE = "<!channel> <https://evil.example/x|click here> & `x`"


def hostile_alert():
    a = ALERTS[0]
    item = dataclasses.replace(a.items[0], feature=HOSTILE,
                               detail={"group": "<!here>", "category": "<@U0ADMIN>"})
    return dataclasses.replace(a, items=(item, *a.items[1:]))


def test_data_borne_names_are_escaped_in_what_slack_receives(server):
    a = hostile_alert()
    sink = make_sink(server, runbook_url="https://wiki.example.com/rb/{feature}")
    deliver_all(sink, [a])
    (m,) = server.messages
    sent = m.text + str(m.blocks)
    for raw in ("<!channel>", "<!here>", "<@U0ADMIN>", "<https://evil", "|click here>"):
        assert raw not in sent, raw
    assert "&lt;!channel&gt;" in sent and "&lt;!here&gt;" in sent and "&amp;" in sent
    # the only link is the run-book, with the feature name quoted into one path segment
    links = [seg for seg in sent.split("<")[1:] if "|" in seg.split(">")[0]]
    assert len(links) == 1 and links[0].startswith("https://wiki.example.com/rb/%3C%21channel")
    # the fallback text (shown in notifications) is escaped too
    text, _ = render(a)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
