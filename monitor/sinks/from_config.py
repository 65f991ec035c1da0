"""The sinks a config asks for, each in its own alert delivery loop, and what their health
says: built by :func:`monitor.pipeline.run`, read by ``/health``."""

from __future__ import annotations

from typing import Any

from monitor.config import MonitorConfig


def make_sinks(cfg: MonitorConfig, client: dict[str, Any]) -> list:
    """One :class:`AlertDelivery` per sink, each in its own consumer group on the alerts topic,
    so a Slack outage never holds back retraining triggers (and the other way round)."""
    from monitor.sinks.delivery import AlertDelivery
    from monitor.sinks.trigger import TriggerPolicy, TriggerSink

    out = []
    t = cfg.triggers
    if t.enabled:
        sink = TriggerSink(client, cfg.topics.triggers,
                           TriggerPolicy(on=t.on, confirm_windows=t.confirm_windows,
                                         cooldown_ms=t.cooldown_ms))
        sink.restore()  # cooldowns survive restarts: rebuilt from the trigger topic
        out.append(AlertDelivery(client, cfg.topics.alerts, f"{cfg.kafka.group_id}-triggers",
                                 sink))
    s = cfg.slack
    if s is not None:
        from monitor.sinks.slack import SlackSink, SlackWebhookSink

        if s.token is not None:
            sink = SlackSink(s.token, s.channel, base_url=s.base_url, runbook_url=s.runbook_url,
                             mention=s.mention)
        else:
            sink = SlackWebhookSink(s.webhook_url, runbook_url=s.runbook_url, mention=s.mention)
        out.append(AlertDelivery(client, cfg.topics.alerts, f"{cfg.kafka.group_id}-slack",
                                 sink))
    am = cfg.alertmanager
    if am is not None:
        from monitor.sinks.alertmanager import AlertmanagerSink

        # the model / version labels come from each alert (the config's model: section)
        sink = AlertmanagerSink(am.url, status_url=am.status_url, labels=dict(am.labels),
                                resend_interval_s=am.resend_interval_ms / 1000,
                                timeout_s=am.timeout_ms / 1000)
        sink.restore(cfg.monitor)  # keep re-sending the open alerts a previous process sent
        out.append(AlertDelivery(client, cfg.topics.alerts,
                                 f"{cfg.kafka.group_id}-alertmanager", sink))
    for w in getattr(cfg, "webhooks", ()):
        from monitor.sinks.webhook import WebhookSink

        hook = WebhookSink(w.url or w.url_secret, name=w.name, signing_secret=w.signing_secret,
                           timeout_s=w.timeout_ms / 1000)
        out.append(AlertDelivery(client, cfg.topics.alerts, f"{cfg.kafka.group_id}-{w.name}",
                                 hook))
    return out


def sink_problems(deliveries: list) -> dict[str, str]:
    """{"sink-<name>": last error} for every sink failing on a permanent answer."""
    return {f"sink-{d.sink.health.name}": d.sink.health.last_error or ""
            for d in deliveries if d.sink.health.failing}


def stage_problems(deliveries: list, runner) -> dict[str, str]:
    """{"stage2" / "delivery-<group>": last error} for the stage-2 step that keeps failing
    (:attr:`Stage2Runner.health`) and every alert delivery loop whose commits or reads keep
    failing, or that crashed (:attr:`AlertDelivery.health`; the sink's own answers are in
    :func:`sink_problems`)."""
    out = {}
    if runner is not None and not runner.health["ok"]:
        out["stage2"] = runner.health["last_error"] or "failing"
    for d in deliveries:
        h = d.health
        if h["failing_kind"] in ("commit", "consume", "crashed") and not h["ok"]:
            out[f"delivery-{d.group_id}"] = h["last_error"] or "failing"
    return out
