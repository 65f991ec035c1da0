"""The config object: frozen dataclasses, durations in ms, secrets as :class:`Secret`.

Built by :mod:`monitor.config.build` from the validated YAML; see :mod:`monitor.config`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from monitor.config.checks import (  # noqa: F401  (part of the config types)
    CategoricalChecks, ChecksConfig, FairnessChecks, NumericChecks, PredictionChecks,
    QualityChecks)
from monitor.errors import ConfigError
from monitor.records import Silence  # noqa: F401  (the one silence type; config builds it)

BOOTSTRAP_ENV = "STREAMDRIFT_KAFKA_BOOTSTRAP"
HTTP_HOST_ENV = "STREAMDRIFT_HTTP_HOST"
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


# -- small immutable helpers -------------------------------------------------------------

class FrozenMap(Mapping):
    """A read-only, hashable, picklable dict (for librdkafka pass-through properties)."""

    __slots__ = ("_d",)

    def __init__(self, items: Mapping | None = None) -> None:
        self._d = dict(items or {})

    def __getitem__(self, k):
        return self._d[k]

    def __iter__(self) -> Iterator:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._d.items(), key=lambda kv: str(kv[0]))))

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"

    def __reduce__(self):
        return (FrozenMap, (self._d,))


@dataclass(frozen=True, repr=False)
class Secret:
    """Where a secret lives: an environment variable or a file. Never its value.

    >>> s = Secret(env="SD_DOCTEST_PW", field="kafka.sasl.password_env")
    >>> s.reveal({"SD_DOCTEST_PW": "hunter2"}), repr(s)
    ('hunter2', "Secret(env='SD_DOCTEST_PW')")
    """

    env: str | None = None
    file: Path | None = None
    field: str = ""

    def reveal(self, environ: Mapping[str, str] | None = None) -> str:
        """The secret's value, read now (a rotated file or env var is picked up)."""
        environ = os.environ if environ is None else environ
        if self.env is not None:
            value = environ.get(self.env)
            if not value:
                raise ConfigError(self.field, f"environment variable {self.env} is not set "
                                  "(or empty): export it before starting the monitor")
            return value
        assert self.file is not None
        try:
            value = self.file.read_text().rstrip("\r\n")
        except OSError as e:
            raise ConfigError(self.field, f"cannot read secret file {self.file}: "
                              f"{e.strerror or e}") from None
        if not value:
            raise ConfigError(self.field, f"secret file {self.file} is empty")
        return value

    def __repr__(self) -> str:
        return f"Secret(env={self.env!r})" if self.env else f"Secret(file={str(self.file)!r})"

    __str__ = __repr__


def parse_duration(value: str) -> int:
    """A duration as an int of milliseconds: ``"500ms"``, ``"10s"``, ``"5m"``, ``"1h"``,
    ``"2d"``, ``"1.5s"``. A bare number has no unit and is refused (``60`` could mean
    seconds or milliseconds; the config says which)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    s = str(value).strip()
    if s.replace(".", "", 1).isdigit():
        raise ValueError(f"{s} has no unit; write {s}s or {s}ms")
    for unit in ("ms", "s", "m", "h", "d"):
        if s.endswith(unit) and (unit != "s" or not s.endswith("ms")):
            return int(round(float(s[: -len(unit)]) * _UNITS_MS[unit]))
    raise ValueError(f"not a duration: {value!r}")


# -- the config object -------------------------------------------------------------------

@dataclass(frozen=True)
class SaslConfig:
    mechanism: str  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
    username: str
    password: Secret


@dataclass(frozen=True)
class TlsConfig:
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: Secret | None = None
    check_hostname: bool = True


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str  # "host:port[,host:port...]", after the STREAMDRIFT_KAFKA_BOOTSTRAP override
    security_protocol: str = "PLAINTEXT"
    sasl: SaslConfig | None = None
    tls: TlsConfig | None = None
    group_id: str = ""
    session_timeout_ms: int = 10_000
    properties: FrozenMap = field(default_factory=FrozenMap)


@dataclass(frozen=True)
class EventTimeConfig:
    field: str
    unit: str = "ms"  # ms | s | iso8601


@dataclass(frozen=True)
class RegistryAuth:
    """How to reach a schema registry that wants credentials (never in the URL)."""

    username: str | None = None  # basic auth, with ``password``
    password: Secret | None = None
    token: Secret | None = None  # bearer token
    ca_file: Path | None = None  # a private CA for an https:// registry


@dataclass(frozen=True)
class StreamConfig:
    topic: str
    format: str = "json"  # json | avro (Confluent wire format)
    schema_registry_url: str | None = None
    schema_registry: RegistryAuth | None = None
    event_time: EventTimeConfig | None = None  # None: the Kafka message timestamp
    event_id_field: str | None = None  # duplicate detection needs it
    known_fields: tuple[str, ...] = ()  # unread fields that are not a schema change
    batch_size: int = 10_000
    start_from: str = "earliest"
    snapshot_interval_ms: int = 5_000
    max_future_skew_ms: int = 86_400_000  # event time past Kafka timestamp + this: bad


@dataclass(frozen=True)
class FeatureSettings:
    """The effective settings of one feature: the ``checks`` defaults of its kind with every
    matching rule applied in file order (a later rule overrides an earlier one).

    ``floors``: check name -> the configured value of the catalogue row's floor key (see
    :mod:`kernels.catalogue`) for every check of this feature that has a per-feature key."""

    name: str
    kind: str  # numeric | categorical
    range: tuple[float | None, float | None] | None = None
    drift_enabled: bool = True
    chi2: bool = True
    quality_enabled: bool = True
    floors: FrozenMap = field(default_factory=FrozenMap)


@dataclass(frozen=True)
class FeatureRule:
    match: str
    type: str | None = None
    range: tuple[float | None, float | None] | None = None
    drift: FrozenMap = field(default_factory=FrozenMap)
    quality: FrozenMap = field(default_factory=FrozenMap)

    def applies_to(self, name: str, kind: str) -> bool:
        return (self.type is None or self.type == kind) and fnmatch.fnmatchcase(name, self.match)


@dataclass(frozen=True)
class FeaturesConfig:
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    rules: tuple[FeatureRule, ...] = ()
    settings: FrozenMap = field(default_factory=FrozenMap, repr=False)  # name -> FeatureSettings


@dataclass(frozen=True)
class PredictionConfig:
    score: str | None = None
    class_: str | None = None  # "class" in the file
    threshold: float | None = None  # class = score >= threshold, when no class field
    label: str | None = None
    positive_class: str | int | bool = 1
    positive_label: str | int | bool = 1


@dataclass(frozen=True)
class SensitiveConfig:
    attribute: str
    reference_group: str | None = None  # None: the group with the highest selection rate
    min_group_events: int = 10  # a sanity floor: tests and intervals decide (stage2/rules)


@dataclass(frozen=True)
class WindowsConfig:
    size_ms: int
    slide_ms: int | None = None  # None: tumbling
    allowed_lateness_ms: int = 10_000
    idle_timeout_ms: int = 30_000
    min_events: int = 500


@dataclass(frozen=True)
class ReferenceConfig:
    profile: Path
    rolling_windows: int = 0


@dataclass(frozen=True)
class TopicsConfig:
    partials: str
    reports: str
    alerts: str
    triggers: str
    dead_letter: str
    state: str
    stage2_state: str  # stage 2's compacted state topic (window bookkeeping, alert state)
    silences: str  # compacted: the silences added with `streamdrift silence add`
    replication_factor: int = -1  # -1: the broker's default.replication.factor
    partials_retention_ms: int = 7 * 86_400_000
    reports_retention_ms: int = 30 * 86_400_000
    alerts_retention_ms: int = 30 * 86_400_000
    triggers_retention_ms: int = 30 * 86_400_000


@dataclass(frozen=True)
class Stage1Config:
    """How stage 1 runs: ``processes`` stage-1 processes under one worker (consumer-group
    members, one per core; :mod:`monitor.workers`). ``run --source-processes N`` overrides."""

    processes: int = 1


@dataclass(frozen=True)
class DeadLetterConfig:
    """What a dead-letter copy of a bad message keeps: ``raw`` (the bytes, minus
    ``drop_fields`` of a JSON object), ``hash`` (sha256 of the bytes) or ``drop`` (nothing
    but the reason and position)."""

    payload: str = "raw"  # raw | hash | drop
    drop_fields: tuple[str, ...] = ()
    retention_ms: int = 7 * 86_400_000


@dataclass(frozen=True)
class OutputConfig:
    reports_jsonl: Path | None = None


@dataclass(frozen=True)
class AlertsConfig:
    confirm_windows: int = 2
    resolve_windows: int = 2
    repeat_interval_ms: int = 3_600_000
    silences: tuple[Silence, ...] = ()
    reopen_windows: int = 3


@dataclass(frozen=True)
class SlackConfig:
    channel: str
    token: Secret | None = None
    webhook_url: Secret | None = None
    base_url: str | None = None  # None: https://slack.com/api/
    runbook_url: str | None = None
    mention: str | None = None


@dataclass(frozen=True)
class AlertmanagerConfig:
    url: str                                   # base URL; alerts go to <url>/api/v2/alerts
    status_url: str | None = None              # the status page linked from every alert
    labels: tuple[tuple[str, str], ...] = ()   # extra static labels
    resend_interval_ms: int = 60_000
    timeout_ms: int = 10_000


@dataclass(frozen=True)
class WebhookConfig:
    name: str
    url: str | None = None              # a plain URL, or
    url_secret: Secret | None = None    # url_env / url_file (URLs often carry a token)
    signing_secret: Secret | None = None
    timeout_ms: int = 10_000


@dataclass(frozen=True)
class TriggersConfig:
    enabled: bool = True
    on: str = "critical"  # warning | critical
    confirm_windows: int = 2
    cooldown_ms: int = 21_600_000


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True)
class MonitorConfig:
    monitor: str
    kafka: KafkaConfig
    stream: StreamConfig
    features: FeaturesConfig
    prediction: PredictionConfig
    sensitive: SensitiveConfig | None
    windows: WindowsConfig
    reference: ReferenceConfig
    checks: ChecksConfig
    topics: TopicsConfig
    output: OutputConfig
    alerts: AlertsConfig
    slack: SlackConfig | None
    triggers: TriggersConfig
    http: HttpConfig
    dead_letter: DeadLetterConfig = DeadLetterConfig()
    stage1: Stage1Config = Stage1Config()
    alertmanager: AlertmanagerConfig | None = None
    webhooks: tuple[WebhookConfig, ...] = ()
    source: Path | None = None  # the file it was loaded from
    model: Any = None  # monitor.config.labels.ModelConfig (name defaults to the monitor's)
    labels: Any = None  # monitor.config.labels.LabelsConfig, or None: no delayed labels
    slices: Any = None  # monitor.config.slices.DriftSlicesConfig, or None: no drift slices

    def feature(self, name: str) -> FeatureSettings:
        """The effective settings of feature ``name`` (KeyError if it is not configured)."""
        return self.features.settings[name]

    @property
    def fields(self) -> tuple[str, ...]:
        """Every top-level JSON field the decoder reads, in a fixed order."""
        p, out = self.prediction, [*self.features.numeric, *self.features.categorical]
        out += [f for f in (p.score, p.class_, p.label) if f]
        if self.sensitive and self.sensitive.attribute not in out:
            out.append(self.sensitive.attribute)
        if self.stream.event_time:
            out.append(self.stream.event_time.field)
        if self.stream.event_id_field:
            out.append(self.stream.event_id_field)
        return tuple(out)
