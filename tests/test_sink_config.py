"""The `alertmanager` config section: parsed, checked, and wired into a delivery loop with the
settings it names."""

from __future__ import annotations

import pytest

from monitor import config as C
from monitor.errors import ConfigError
from monitor.sinks.from_config import make_sinks

BASE = {"monitor": "loan", "kafka": {"bootstrap": "127.0.0.1:1"}, "stream": {"topic": "t"},
        "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
        "reference": {"profile": "/r"}, "triggers": {"enabled": False}}


def test_alertmanager_section_reaches_the_sink():
    cfg = C.from_dict({**BASE, "model": {"name": "loan-model", "version": "v7"},
                       "alertmanager": {"url": "http://127.0.0.1:1", "status_url": "http://mon:9108", "labels": {"team": "ml"}, "resend_interval": "30s",
        "timeout": "2s"}})
    (delivery,) = make_sinks(cfg, {"bootstrap.servers": "127.0.0.1:1"})
    try:
        sink = delivery.sink
        assert delivery.group_id.endswith("-alertmanager")
        # no model override: the model / version labels come from each alert, which the
        # evaluator stamps from the config's model: section (tests/test_alertmanager.py)
        assert (sink.url, sink.model, sink.model_version, sink.status_url, sink.labels,
                sink.resend_interval_s, sink.timeout_s) == (
            "http://127.0.0.1:1", None, None, "http://mon:9108", {"team": "ml"},
            30.0, 2.0)
    finally:
        delivery.close()
        delivery.sink.close()


def test_alertmanager_defaults_and_absence():
    assert C.from_dict(BASE).alertmanager is None
    am = C.from_dict({**BASE, "alertmanager": {"url": "http://am:9093"}}).alertmanager
    assert (am.status_url, am.labels, am.resend_interval_ms) == (None, (), 60_000)


@pytest.mark.parametrize("section, named", [
    ({}, "alertmanager"),
    ({"url": "am:9093"}, "alertmanager.url"),
    ({"url": "http://am:9093", "labels": {"severity": "page"}}, "alertmanager.labels.severity"),
    ({"url": "http://am:9093", "labels": {"bad-name": "x"}}, "alertmanager.labels"),
    ({"url": "http://am:9093", "resend_interval": "0s"}, "alertmanager.resend_interval"),
])
def test_bad_alertmanager_config_names_the_field(section, named):
    with pytest.raises(ConfigError) as e:
        C.from_dict({**BASE, "alertmanager": section})
    assert named in str(e.value)


@pytest.mark.parametrize("hooks, named", [
    ([{}], "webhooks[0].url"),
    ([{"url": "http://a/x", "url_env": "HOOK"}], "webhooks[0].url"),
    ([{"url": "ftp://a/x"}], "webhooks[0].url"),
    ([{"name": "a", "url": "http://a/x"}, {"name": "a", "url": "http://b/x"}], "webhooks"),
    ([{"url": "http://a/x", "signing_secret": "plain"}], "webhooks[0].signing_secret"),
])
def test_bad_webhook_config_names_the_field(hooks, named):
    with pytest.raises(ConfigError) as e:
        C.from_dict({**BASE, "webhooks": hooks})
    assert named in str(e.value)
