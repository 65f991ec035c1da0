"""The topics streamdrift creates and the settings each one gets (its topic policy).

Every topic the monitor writes is listed here once, with the partitions and topic configs
it is created with, and the role it plays. ``streamdrift run`` creates the missing ones
(:func:`ensure_topics`); ``streamdrift check`` compares the wanted settings with the actual
ones (:func:`policy_drift`). The monitored topic is never created: it must exist.

======================  =========  ==========================================================
topic                   cleanup    why
======================  =========  ==========================================================
state                   compact    each source partition's newest state, kept forever
partials                delete     window partials; stage 2 keeps them in its tables, so a
                                   bounded retention (``topics.retention.partials``, 7d)
reports                 delete     window reports (``topics.retention.reports``, 30d)
alerts                  delete     alert events for the sinks (``topics.retention.alerts``)
triggers                delete     retraining triggers; at least ``triggers.cooldown``
dead_letter             delete     bad messages (``dead_letter.retention``, 7d) — what they
                                   keep is ``dead_letter.payload``
stage2_state            compact    stage 2's state (open windows' partials, window bookkeeping,
                                   alert policy state, rolling reference, volume baseline),
                                   written in one transaction with each step's reports/alerts
silences                compact    the silences of ``streamdrift silence``, one per key
Faust leader topic      delete     Faust's partition assignor
======================  =========  ==========================================================

>>> from monitor.config import from_dict
>>> cfg = from_dict({"monitor": "m", "kafka": {"bootstrap": "k:9092"},
...     "stream": {"topic": "t"}, "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
...     "reference": {"profile": "/r"}}, env={})
>>> [(t.role, t.config.get("cleanup.policy")) for t in wanted_topics(cfg)][:3]
[('partials', 'delete'), ('state', 'compact'), ('reports', 'delete')]
>>> wanted_topics(cfg)[5].config["retention.ms"]  # dead letter: 7 days by default
'604800000'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.config import MonitorConfig
from monitor.errors import StreamdriftError

MAX_MESSAGE_BYTES = "20000000"  # a partial or a state snapshot of a wide profile


@dataclass(frozen=True)
class TopicPolicy:
    """One topic the monitor owns: its name, role, partitions and wanted configs."""

    name: str
    role: str  # partials | state | reports | alerts | triggers | dead_letter | stage2_state
    #            | silences | faust
    partitions: int = 1
    config: dict[str, str] = field(default_factory=dict)


def faust_app_id(cfg: MonitorConfig) -> str:
    """Stage 2's Faust app id: its consumer group and the prefix of its topics."""
    return f"{cfg.kafka.group_id}-stage2"


def wanted_topics(cfg: MonitorConfig) -> list[TopicPolicy]:
    """Every topic the monitor creates, with its settings (see the module docstring)."""
    t = cfg.topics

    def bounded(ms: int) -> dict[str, str]:
        return {"cleanup.policy": "delete", "retention.ms": str(ms),
                "max.message.bytes": MAX_MESSAGE_BYTES}

    compact = {"cleanup.policy": "compact", "max.message.bytes": MAX_MESSAGE_BYTES}
    app = faust_app_id(cfg)
    return [
        # one partition: keeps every source partition's messages in order
        TopicPolicy(t.partials, "partials", 1, bounded(t.partials_retention_ms)),
        TopicPolicy(t.state, "state", 1, dict(compact)),
        TopicPolicy(t.reports, "reports", 1, bounded(t.reports_retention_ms)),
        TopicPolicy(t.alerts, "alerts", 1, bounded(t.alerts_retention_ms)),
        TopicPolicy(t.triggers, "triggers", 1, bounded(t.triggers_retention_ms)),
        TopicPolicy(t.dead_letter, "dead_letter", 1, bounded(cfg.dead_letter.retention_ms)),
        TopicPolicy(t.stage2_state, "stage2_state", 1, dict(compact)),
        TopicPolicy(t.silences, "silences", 1, dict(compact)),
        TopicPolicy(f"{app}-__assignor-__leader", "faust", 1, {"cleanup.policy": "delete"}),
    ]


def ensure_topics(cfg: MonitorConfig, client: dict[str, Any]) -> list[str]:
    """Create the monitor's missing topics with their policies; returns the names created.
    The monitored topic must exist. Existing topics are left as they are (``streamdrift
    check`` reports how their settings differ)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client)
    have = set(admin.list_topics(timeout=15).topics)
    if cfg.stream.topic not in have:
        raise StreamdriftError(f"stream.topic: the topic {cfg.stream.topic!r} does not exist on "
                               f"{cfg.kafka.bootstrap} (or the monitor may not DESCRIBE it)")
    rf = cfg.topics.replication_factor
    new = [NewTopic(p.name, p.partitions, rf, config=p.config)
           for p in wanted_topics(cfg) if p.name not in have]
    created = []
    for name, fut in admin.create_topics(new, operation_timeout=30).items() if new else []:
        try:
            fut.result(30)
            created.append(name)
        except Exception as e:  # created concurrently by another worker is fine
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise StreamdriftError(f"cannot create topic {name!r}: {_reason(e)}") from None
    return created


def policy_drift(cfg: MonitorConfig, client: dict[str, Any],
                 timeout_s: float = 15.0) -> tuple[list[str], list[str]]:
    """``(drift, unreadable)``: one line per setting of an existing topic that differs from
    its policy (partitions included), and one per topic whose settings the principal may not
    read (DESCRIBE_CONFIGS). Topics that do not exist yet are not drift (``run`` creates
    them)."""
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient(client)
    md = admin.list_topics(timeout=timeout_s).topics
    wanted = [p for p in wanted_topics(cfg) if p.name in md]
    out, unreadable = [], []
    for p in wanted:
        n = len(md[p.name].partitions)
        if n != p.partitions:
            out.append(f"topic {p.name!r} ({p.role}): {n} partitions, wanted {p.partitions}")
    if not wanted:
        return out, unreadable
    futs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, p.name) for p in wanted],
                                  request_timeout=timeout_s)
    by_name = {r.name: f for r, f in futs.items()}
    for p in wanted:
        try:
            actual = {k: v.value for k, v in by_name[p.name].result().items()}
        except Exception as e:
            unreadable.append(f"topic {p.name!r} ({p.role}): cannot read its settings "
                              f"({_reason(e)}); grant DESCRIBE_CONFIGS on it to compare "
                              "them with the policy")
            continue
        for key, want in sorted(p.config.items()):
            if actual.get(key) != want:
                out.append(f"topic {p.name!r} ({p.role}): {key}={actual.get(key)}, wanted "
                           f"{want} (kafka-configs --alter --entity-type topics --entity-name "
                           f"{p.name} --add-config {key}={want})")
    return out, unreadable


def _reason(e: Exception) -> str:
    err = e.args[0] if e.args else e
    return err.str() if hasattr(err, "str") else str(e)
