"""Retraining-trigger sink: alert events in, trigger events on a Kafka topic keyed by
``model:version``.

:class:`TriggerPolicy` decides from the alert stream when a model should be retrained (by
default: a critical drift item that has been bad for 2 windows in a row, at most once per
6 h of window time per model version). :class:`TriggerSink` publishes a :class:`Trigger` for each
such alert with an idempotent producer (``enable.idempotence=true``, ``acks=all``) and
returns only after the broker acknowledged it, so the delivery loop commits the alerts-topic
offset only then.

Every trigger carries an ``idempotency_key`` derived from (model:version, alert id): when a crash
makes the sink publish the same trigger again, it has the same key, and the training job
drops it (see docs/triggers.md). The cooldown state is rebuilt at start from the trigger
topic itself (:meth:`TriggerSink.restore`), so a restart does not shorten a cooldown.

>>> from monitor.records import UNVERSIONED, Alert, AlertItem, model_key
>>> item = AlertItem(key="m/ks/age", check="ks", family="numeric_drift", feature="age",
...     severity="critical", statistic=0.31, p_value=1e-12, effect_size=0.31, floor=0.1,
...     level=5e-4, n_window=5000, n_reference=50000, since_window_start_ms=0, bad_windows=2)
>>> a = Alert("sd-" + "0" * 24, "firing", "new", "m", 60_000, 120_000, "prof-1", "0.1.0",
...     "critical", (item,), None, False, "bonferroni", 0.01, 20, model_version="v7")
>>> policy = TriggerPolicy(on="critical", confirm_windows=2, cooldown_ms=3_600_000)
>>> t = policy.decide(a, model="loan-default")
>>> t.reason["features"], t.window_start_ms, t.window_end_ms, t.model_version, t.topic_key
(['age'], 0, 120000, 'v7', 'loan-default:v7')
>>> policy.decide(a, model="loan-default") is None   # cooldown of loan-default:v7
True
>>> import dataclasses
>>> policy.decide(dataclasses.replace(a, model_version="v8"), model="loan-default").model_version
'v8'

"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from monitor.errors import ConfigError
from monitor.records import UNVERSIONED, Alert, AlertItem, model_key
from monitor.sinks import SinkHealth, SinkRejected, SinkUnavailable

log = logging.getLogger("streamdrift.sinks.trigger")

SCHEMA_VERSION = 1
DRIFT_FAMILIES = ("numeric_drift", "categorical_drift", "prediction_drift", "performance")
_RANK = {"warning": 1, "critical": 2}
#: broker answers that repeat until someone changes an ACL or the config
PERMANENT_KAFKA = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED,
                             KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                             KafkaError.SASL_AUTHENTICATION_FAILED,
                             KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED})


@dataclass(frozen=True)
class Trigger:
    """One retraining trigger (``schemas/retraining-trigger.schema.json``)."""

    idempotency_key: str
    model: str
    monitor: str
    alert_id: str
    severity: str
    reason: dict[str, Any]          # {"checks": [...], "features": [...], "text": "..."}
    statistics: list[dict[str, Any]]
    window_start_ms: int            # first window of the bad run
    window_end_ms: int              # end of the window that confirmed it
    reference_profile_id: str
    monitor_version: str
    schema_version: int = SCHEMA_VERSION
    model_version: str = UNVERSIONED  # the version whose windows drifted

    @property
    def topic_key(self) -> str:
        """The message key on the trigger topic and the cooldown's key: ``model:version``."""
        return model_key(self.model, self.model_version)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Trigger":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def idempotency_key(model: str, alert_id: str) -> str:
    """``model``: ``model:version`` (:func:`monitor.records.model_key`)."""
    return hashlib.sha256(f"{model}\x1f{alert_id}".encode()).hexdigest()[:32]


class TriggerPolicy:
    """When an alert should retrain its model.

    ``on``: the lowest severity that triggers (warning | critical); ``confirm_windows``: bad
    windows in a row an item needs (counted by the alert policy; set it at or below the alert
    policy's ``confirm_windows`` to trigger on the firing notification itself, above it to wait
    for the repeats); ``cooldown_ms``: window time between two triggers of one model version
    (a new version has its own cooldown);
    ``families``: which check families may trigger (data-quality and fairness alerts page
    people, they do not retrain models by default).
    """

    def __init__(self, on: str = "critical", confirm_windows: int = 2,
                 cooldown_ms: int = 21_600_000, families: Iterable[str] = DRIFT_FAMILIES) -> None:
        if on not in _RANK:
            raise ConfigError("triggers.on", f"expected warning or critical, got {on!r}")
        self.on = on
        self.confirm_windows = confirm_windows
        self.cooldown_ms = cooldown_ms
        self.families = tuple(families)
        self._last: dict[str, int] = {}   # model:version -> window_end_ms of its last trigger

    def __repr__(self) -> str:
        return (f"TriggerPolicy(on={self.on!r}, confirm_windows={self.confirm_windows}, "
                f"cooldown_ms={self.cooldown_ms}, families={self.families!r})")

    def qualifying(self, alert: Alert) -> list[AlertItem]:
        if alert.kind == "resolved":
            return []
        return [i for i in alert.items if _RANK[i.severity] >= _RANK[self.on]
                and i.family in self.families and i.bad_windows >= self.confirm_windows]

    def remember(self, key: str, window_end_ms: int) -> None:
        """``key``: ``model:version`` (:attr:`Trigger.topic_key`)."""
        self._last[key] = max(window_end_ms, self._last.get(key, window_end_ms))

    def forget(self, key: str) -> None:
        self._last.pop(key, None)

    def decide(self, alert: Alert, model: str) -> Trigger | None:
        items = self.qualifying(alert)
        if not items:
            return None
        key = model_key(model, alert.model_version)
        last = self._last.get(key)
        if last is not None and alert.window_end_ms - last < self.cooldown_ms:
            return None
        self.remember(key, alert.window_end_ms)
        checks = sorted({i.check for i in items})
        features = sorted({i.feature for i in items})
        stats = [{"check": i.check, "family": i.family, "feature": i.feature,
                  "severity": i.severity, "statistic": i.statistic, "p_value": i.p_value,
                  "effect_size": i.effect_size, "n_window": i.n_window,
                  "n_reference": i.n_reference, "bad_windows": i.bad_windows} for i in items]
        text = (f"{key}: {len(items)} {self.on}+ drift check(s) bad for >= "
                f"{self.confirm_windows} "
                f"windows: " + ", ".join(f"{i.check}({i.feature})={i.effect_size:.3g}"
                                         for i in items))
        return Trigger(idempotency_key=idempotency_key(key, alert.alert_id), model=model,
                       model_version=alert.model_version,
                       monitor=alert.monitor, alert_id=alert.alert_id,
                       severity=max((i.severity for i in items), key=_RANK.__getitem__),
                       reason={"checks": checks, "features": features, "text": text},
                       statistics=stats,
                       window_start_ms=min(i.since_window_start_ms for i in items),
                       window_end_ms=alert.window_end_ms,
                       reference_profile_id=alert.profile_id,
                       monitor_version=alert.monitor_version)


class TriggerSink:
    """Publishes triggers on ``topic`` keyed by ``model:version``; ``write`` returns after the
    broker's acknowledgement. ``model``: one model name, or a mapping monitor -> model
    (default: the alert's model, which is the config's ``model.name``); the version is always
    the alert's. ``producer_config``: librdkafka settings (bootstrap, security)."""

    name = "retraining-trigger"

    def __init__(self, producer_config: Mapping[str, Any], topic: str, policy: TriggerPolicy,
                 model: str | Mapping[str, str] | None = None, flush_timeout_s: float = 30.0) -> None:
        self.topic = topic
        self.policy = policy
        self.model = model
        self.flush_timeout_s = flush_timeout_s
        self._config = dict(producer_config)
        self._producer = Producer({**self._config, "enable.idempotence": True, "acks": "all",
                                   "linger.ms": 0})
        self.published: list[Trigger] = []
        self.health = SinkHealth(self.name)

    def __repr__(self) -> str:
        return f"TriggerSink(topic={self.topic!r}, policy={self.policy!r}, model={self.model!r})"

    def model_for(self, monitor: str) -> str:
        if isinstance(self.model, str):
            return self.model
        if isinstance(self.model, Mapping):
            return self.model.get(monitor, monitor)
        return monitor

    def _model_of(self, a: Alert) -> str:
        return a.model if self.model is None else self.model_for(a.monitor)

    def restore(self, max_per_partition: int = 1000, timeout_s: float = 20.0) -> int:
        """Rebuild the cooldowns from the last triggers on the topic; returns how many read."""
        c = Consumer({**self._config, "group.id": "streamdrift-trigger-restore",
                      "enable.auto.commit": False, "isolation.level": "read_committed"})
        try:
            md = c.list_topics(self.topic, timeout=timeout_s).topics[self.topic]
            parts = []
            for p in md.partitions:
                lo, hi = c.get_watermark_offsets(TopicPartition(self.topic, p), timeout=timeout_s)
                if hi > lo:
                    parts.append(TopicPartition(self.topic, p, max(lo, hi - max_per_partition)))
            if not parts:
                return 0
            ends = {p.partition: c.get_watermark_offsets(p, timeout=timeout_s)[1] for p in parts}
            c.assign(parts)
            n, deadline = 0, time.monotonic() + timeout_s
            done: set[int] = set()
            while len(done) < len(parts) and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None or m.error():
                    continue
                if m.offset() + 1 >= ends[m.partition()]:
                    done.add(m.partition())
                try:
                    t = Trigger.from_dict(orjson.loads(m.value()))
                except (ValueError, TypeError):
                    continue
                self.policy.remember(t.topic_key, t.window_end_ms)
                n += 1
            return n
        finally:
            c.close()

    def write(self, alerts: Sequence[Alert]) -> None:
        try:
            self._write(alerts)
        except SinkUnavailable as e:
            self.health.record(e)
            raise
        self.health.delivered_one()

    def _write(self, alerts: Sequence[Alert]) -> None:
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                errors.append(err)

        pending = []
        for a in alerts:
            t = self.policy.decide(a, self._model_of(a))
            if t is None:
                continue
            self._producer.produce(self.topic, orjson.dumps(t.to_dict()), key=t.topic_key.encode(),
                                   headers={"idempotency_key": t.idempotency_key},
                                   on_delivery=on_delivery)
            pending.append(t)
        if not pending:
            return
        left = self._producer.flush(self.flush_timeout_s)
        if left or errors:
            for t in pending:      # forget the cooldown: the next attempt must publish again
                self.policy.forget(t.topic_key)
            denied = [e for e in errors if e.code() in PERMANENT_KAFKA or e.fatal()]
            if denied:
                raise SinkRejected(self.name, denied[0].name().lower(), f"the trigger topic "
                                   f"{self.topic} refused the write ({denied[0].str()}): grant "
                                   "the principal Write on it or fix topics.triggers", 30.0)
            raise SinkUnavailable(self.name, f"{left} trigger(s) unacknowledged, errors: "
                                  f"{[str(e) for e in errors]}", 5.0,
                                  kind=errors[0].name().lower() if errors else "timeout")
        self.published += pending
        for t in pending:
            log.info("retraining trigger %s for model %s (%s)", t.idempotency_key, t.topic_key,
                     t.reason["text"])

    def close(self) -> None:
        self._producer.flush(self.flush_timeout_s)
