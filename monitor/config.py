"""The monitor's config: one YAML file, validated at start, turned into one frozen object.

:func:`load` reads the file, validates it against ``schemas/monitor-config.schema.json``
(JSON Schema 2020-12), checks what a schema cannot say (avro needs a registry URL, a slide
must divide the window, a rule must match a feature ...) and builds a :class:`MonitorConfig`
of frozen dataclasses: durations are ints of milliseconds, relative paths are resolved against
the config file's folder, defaults are filled in. Anything wrong raises
:class:`~monitor.errors.ConfigError` naming every bad field by its path::

    windows.size: expected a duration like "60s" or "5m" (ms, s, m, h, d) or an integer of
    milliseconds, above 0, got "abc"

Secrets (SASL password, TLS key password, Slack token, webhook URL) are only ever named in the
file as ``*_env`` (an environment variable) or ``*_file`` (a path). The config holds a
:class:`Secret` that knows where to look and reads the value only when ``reveal()`` is called,
so no repr, log line or report can carry it.

>>> cfg = from_dict({
...     "monitor": "loan-default",
...     "kafka": {"bootstrap": "127.0.0.1:9092"},
...     "stream": {"topic": "loan-events", "event_time": {"field": "ts"}},
...     "features": {"numeric": ["income"], "categorical": ["region"]},
...     "windows": {"size": "1m"},
...     "reference": {"profile": "/data/ref.profile"},
... }, env={})
>>> cfg.windows.size_ms, cfg.windows.allowed_lateness_ms, cfg.topics.alerts
(60000, 10000, 'streamdrift.loan-default.alerts')
>>> parse_duration("1.5s"), parse_duration(250)
(1500, 250)
"""

from __future__ import annotations

import datetime as _dt
import difflib
import fnmatch
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from monitor.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "monitor-config.schema.json"
BOOTSTRAP_ENV = "STREAMDRIFT_KAFKA_BOOTSTRAP"
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SECRET_KEYS = {"password", "token", "webhook_url", "key_password", "sasl.password",
                "ssl.key.password", "sasl.oauthbearer.client.secret"}


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


def parse_duration(value: int | str) -> int:
    """A duration as an int of milliseconds: ``"500ms"``, ``"10s"``, ``"5m"``, ``"1h"``,
    ``"2d"``, ``"1.5s"``, or an int that already is milliseconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        return value
    s = str(value).strip()
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
class StreamConfig:
    topic: str
    format: str = "json"  # json | avro (Confluent wire format)
    schema_registry_url: str | None = None
    event_time: EventTimeConfig | None = None  # None: the Kafka message timestamp
    event_id_field: str | None = None
    batch_size: int = 10_000
    start_from: str = "earliest"
    snapshot_interval_ms: int = 5_000


@dataclass(frozen=True)
class FeatureSettings:
    """The effective settings of one feature: the ``checks`` defaults of its kind with every
    matching rule applied in file order (a later rule overrides an earlier one)."""

    name: str
    kind: str  # numeric | categorical
    range: tuple[float | None, float | None] | None = None
    drift_enabled: bool = True
    ks_floor: float | None = None
    psi_floor: float = 0.2
    js_floor: float = 0.1
    wasserstein_floor: float | None = None
    chi2: bool | None = None
    unseen_rate_floor: float | None = None
    quality_enabled: bool = True
    missing_rate_max: float = 0.05
    type_error_rate_max: float = 0.01
    nonfinite_rate_max: float = 0.01
    out_of_range_rate_max: float = 0.01


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
    min_group_events: int = 200


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
class NumericChecks:
    enabled: bool = True
    ks_floor: float = 0.1
    psi_floor: float = 0.2
    js_floor: float = 0.1
    wasserstein_floor: float | None = None


@dataclass(frozen=True)
class CategoricalChecks:
    enabled: bool = True
    chi2: bool = True
    psi_floor: float = 0.2
    js_floor: float = 0.1
    unseen_rate_floor: float = 0.01


@dataclass(frozen=True)
class FairnessChecks:
    enabled: bool = True
    disparate_impact_min: float = 0.8
    equalized_odds_max: float = 0.1
    equal_opportunity_max: float = 0.1


@dataclass(frozen=True)
class QualityChecks:
    enabled: bool = True
    missing_rate_max: float = 0.05
    type_error_rate_max: float = 0.01
    nonfinite_rate_max: float = 0.01
    out_of_range_rate_max: float = 0.01
    bad_event_rate_max: float = 0.01
    late_event_rate_max: float = 0.05
    duplicate_rate_max: float = 0.01
    volume_ratio_min: float = 0.0


@dataclass(frozen=True)
class ChecksConfig:
    family_level: float = 0.01
    correction: str = "bonferroni"
    numeric: NumericChecks = NumericChecks()
    categorical: CategoricalChecks = CategoricalChecks()
    prediction: NumericChecks = NumericChecks()
    fairness: FairnessChecks = FairnessChecks()
    quality: QualityChecks = QualityChecks()


@dataclass(frozen=True)
class TopicsConfig:
    partials: str
    reports: str
    alerts: str
    triggers: str
    dead_letter: str
    state: str


@dataclass(frozen=True)
class OutputConfig:
    reports_jsonl: Path | None = None
    include_raw_values: bool = False


@dataclass(frozen=True)
class Silence:
    reason: str
    feature: str = "*"
    check: str = "*"
    family: str = "*"
    until_ms: int | None = None  # None: until removed from the file

    def covers(self, *, feature: str, check: str, family: str, now_ms: int) -> bool:
        return ((self.until_ms is None or now_ms < self.until_ms)
                and fnmatch.fnmatchcase(feature, self.feature)
                and fnmatch.fnmatchcase(check, self.check)
                and fnmatch.fnmatchcase(family, self.family))


@dataclass(frozen=True)
class AlertsConfig:
    confirm_windows: int = 2
    resolve_windows: int = 2
    repeat_interval_ms: int = 3_600_000
    silences: tuple[Silence, ...] = ()


@dataclass(frozen=True)
class SlackConfig:
    channel: str
    token: Secret | None = None
    webhook_url: Secret | None = None
    base_url: str | None = None  # None: https://slack.com/api/
    runbook_url: str | None = None
    mention: str | None = None


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
    source: Path | None = None  # the file it was loaded from

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


# -- loading -----------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """YAML 1.2-ish booleans: only true/false. PyYAML's YAML 1.1 turns ``on``, ``no``,
    ``yes``, ``off`` into booleans, which breaks ``triggers.on`` and category values."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    __import__("re").compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load(path: str | os.PathLike, *, env: Mapping[str, str] | None = None) -> MonitorConfig:
    """Read, validate and build the config in file ``path``. Relative paths in it are
    resolved against the file's folder. Raises :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError("", f"cannot read config file {p}: {e.strerror or e}") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise ConfigError("", f"{p} is not valid YAML: {e}") from None
    if data is None:
        raise ConfigError("", f"{p} is empty: expected a mapping with monitor, kafka, stream, "
                          "features, windows, reference (see examples/monitor.yaml)")
    cfg = from_dict(data, base_dir=p.resolve().parent, env=env)
    return replace(cfg, source=p.resolve())


def from_dict(d: Any, *, base_dir: str | os.PathLike | None = None,
              env: Mapping[str, str] | None = None) -> MonitorConfig:
    """Validate and build a config from its dict form (what the YAML file parses to).
    ``env`` (default ``os.environ``) supplies ``STREAMDRIFT_KAFKA_BOOTSTRAP``."""
    env = os.environ if env is None else env
    validate(d)
    return _Builder(d, Path(base_dir) if base_dir is not None else Path.cwd(), env).build()


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def validate(d: Any) -> None:
    """Check ``d`` against the JSON Schema; raise one ConfigError listing every problem."""
    if not isinstance(d, dict):
        raise ConfigError("", f"expected a mapping at the top of the config, got {_show(d)}")
    problems: dict[str, str] = {}
    for err in sorted(_validator().iter_errors(d), key=lambda e: [str(x) for x in e.path]):
        for path, msg in _explain(err):
            problems.setdefault(path, msg)
    if problems:
        items = sorted(problems.items())
        raise ConfigError(items[0][0], items[0][1], items)


def _fmt_path(parts) -> str:
    out = ""
    for x in parts:
        out += f"[{x}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out


def _show(v: Any) -> str:
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    s = json.dumps(v, default=str)
    return s if len(s) <= 60 else s[:57] + "..."


def _explain(err: jsonschema.ValidationError) -> list[tuple[str, str]]:
    path = _fmt_path(err.absolute_path)
    kw, schema, inst = err.validator, err.schema, err.instance
    if kw == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        out = []
        for k in sorted(set(inst) - set(known), key=str):
            msg = "unknown field"
            if str(k) in _SECRET_KEYS:
                msg += (f": secrets are never written in the config; give {k}_env (an "
                        f"environment variable name) or {k}_file (a path) instead")
            else:
                near = difflib.get_close_matches(str(k), known, n=1) or \
                    [x for x in known if x.startswith(str(k))][:1]
                msg += f" (did you mean {near[0]!r}?)" if near else ""
                msg += f"; expected one of: {', '.join(known)}" if known else ""
            out.append((_fmt_path([*err.absolute_path, k]), msg))
        return out
    if kw == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return [(_fmt_path([*err.absolute_path, missing]), "required field is missing")]
    if kw == "uniqueItems":
        seen, dup = [], None
        for x in inst:
            if x in seen:
                dup = x
                break
            seen.append(x)
        return [(path, f"{_show(dup)} is listed more than once")]
    if kw == "enum":
        want = "one of " + ", ".join(json.dumps(x) for x in err.validator_value)
    elif "x-expected" in schema:
        want = schema["x-expected"]
    elif kw == "type":
        t = err.validator_value
        want = " or ".join(t) if isinstance(t, list) else {
            "object": "a mapping", "array": "a list", "integer": "an integer",
            "number": "a number", "string": "a string", "boolean": "true or false",
        }.get(t, t)
    elif kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
              "exclusiveMaximum": "<"}[kw]
        want = f"a number {op} {err.validator_value}"
    else:
        want = err.message
    return [(path, f"expected {want}, got {_show(inst)}")]


class _Builder:
    """Turns a schema-valid dict into the frozen config, collecting cross-field problems."""

    def __init__(self, d: dict, base: Path, env: Mapping[str, str]) -> None:
        self.d, self.base, self.env = d, base, env
        self.problems: list[tuple[str, str]] = []

    def bad(self, path: str, msg: str) -> None:
        self.problems.append((path, msg))

    def path(self, p: str | None) -> Path | None:
        if p is None:
            return None
        q = Path(os.path.expanduser(p))
        return q if q.is_absolute() else (self.base / q)

    def secret(self, sect: dict, key: str, where: str, required: bool) -> Secret | None:
        e, f = sect.get(f"{key}_env"), sect.get(f"{key}_file")
        if e is not None and f is not None:
            self.bad(f"{where}.{key}_env", f"give either {key}_env or {key}_file, not both")
            return None
        if e is not None:
            return Secret(env=e, field=f"{where}.{key}_env")
        if f is not None:
            return Secret(file=self.path(f), field=f"{where}.{key}_file")
        if required:
            self.bad(f"{where}.{key}_env", f"required: give {key}_env (an environment variable "
                     f"name) or {key}_file (a path)")
        return None

    def build(self) -> MonitorConfig:
        d = self.d
        name = d["monitor"]
        kafka = self.kafka(d["kafka"], name)
        stream = self.stream(d["stream"])
        prediction = self.prediction(d.get("prediction") or {})
        sensitive = (SensitiveConfig(**d["sensitive"]) if d.get("sensitive") else None)
        checks = self.checks(d.get("checks") or {})
        features = self.features(d.get("features") or {}, checks)
        self.check_fields(features, prediction, sensitive, stream)
        windows = self.windows(d["windows"])
        ref = d["reference"]
        reference = ReferenceConfig(profile=self.path(ref["profile"]),
                                    rolling_windows=ref.get("rolling_windows", 0))
        t = d.get("topics") or {}
        topics = TopicsConfig(**{k: t.get(k, f"streamdrift.{name}.{suffix}") for k, suffix in (
            ("partials", "partials"), ("reports", "reports"), ("alerts", "alerts"),
            ("triggers", "triggers"), ("dead_letter", "dlq"), ("state", "state"))})
        used = [(k, v) for k, v in vars(topics).items() if v == stream.topic]
        for k, _ in used:
            self.bad(f"topics.{k}", f"must differ from stream.topic ({stream.topic!r})")
        o = d.get("output") or {}
        output = OutputConfig(reports_jsonl=self.path(o.get("reports_jsonl")),
                              include_raw_values=o.get("include_raw_values", False))
        alerts = self.alerts(d.get("alerts") or {})
        slack = self.slack(d["slack"]) if d.get("slack") else None
        tr = dict(d.get("triggers") or {})
        if "cooldown" in tr:
            tr["cooldown_ms"] = parse_duration(tr.pop("cooldown"))
        triggers = TriggersConfig(**tr)
        http = HttpConfig(**(d.get("http") or {}))
        if self.problems:
            raise ConfigError(self.problems[0][0], self.problems[0][1], self.problems)
        return MonitorConfig(monitor=name, kafka=kafka, stream=stream, features=features,
                             prediction=prediction, sensitive=sensitive, windows=windows,
                             reference=reference, checks=checks, topics=topics, output=output,
                             alerts=alerts, slack=slack, triggers=triggers, http=http)

    def kafka(self, k: dict, name: str) -> KafkaConfig:
        b = k["bootstrap"]
        bootstrap = ",".join(b) if isinstance(b, list) else b
        bootstrap = self.env.get(BOOTSTRAP_ENV) or bootstrap
        proto = k.get("security_protocol", "PLAINTEXT")
        sasl = None
        if k.get("sasl"):
            s = k["sasl"]
            pw = self.secret(s, "password", "kafka.sasl", required=True)
            sasl = SaslConfig(mechanism=s["mechanism"], username=s["username"], password=pw)
            if not proto.startswith("SASL_"):
                self.bad("kafka.security_protocol", "kafka.sasl is set, so expected SASL_SSL "
                         f"or SASL_PLAINTEXT, got {proto!r}")
        elif proto.startswith("SASL_"):
            self.bad("kafka.sasl", f"required when kafka.security_protocol is {proto}")
        tls = None
        if k.get("tls"):
            t = k["tls"]
            if not proto.endswith("SSL"):
                self.bad("kafka.tls", f"only used with security_protocol SSL or SASL_SSL, "
                         f"got {proto!r}")
            if ("cert_file" in t) != ("key_file" in t):
                self.bad("kafka.tls.key_file" if "cert_file" in t else "kafka.tls.cert_file",
                         "cert_file and key_file go together (client certificate)")
            kp = self.secret(t, "key_password", "kafka.tls", required=False)
            if kp is not None and "key_file" not in t:
                self.bad("kafka.tls.key_password_env", "given without kafka.tls.key_file")
            tls = TlsConfig(ca_file=self.path(t.get("ca_file")),
                            cert_file=self.path(t.get("cert_file")),
                            key_file=self.path(t.get("key_file")), key_password=kp,
                            check_hostname=t.get("check_hostname", True))
        props = dict(k.get("properties") or {})
        for key in props:
            if key in _SECRET_KEYS or key.endswith((".password", ".secret")):
                self.bad(f"kafka.properties.{key}", "secrets are never written in the config; "
                         "use kafka.sasl.password_env / kafka.tls.key_password_env")
            elif key in ("bootstrap.servers", "security.protocol", "group.id",
                         "session.timeout.ms") or key.startswith(("sasl.", "ssl.")) and key in (
                         "sasl.mechanism", "sasl.mechanisms", "sasl.username",
                         "ssl.ca.location", "ssl.certificate.location", "ssl.key.location"):
                self.bad(f"kafka.properties.{key}", "set by its own field in kafka "
                         "(bootstrap, security_protocol, group_id, session_timeout_ms, sasl, "
                         "tls); remove it here")
        return KafkaConfig(bootstrap=bootstrap, security_protocol=proto, sasl=sasl, tls=tls,
                           group_id=k.get("group_id", f"streamdrift-{name}"),
                           session_timeout_ms=k.get("session_timeout_ms", 10_000),
                           properties=FrozenMap(props))

    def stream(self, s: dict) -> StreamConfig:
        fmt = s.get("format", "json")
        if fmt == "avro" and not s.get("schema_registry_url"):
            self.bad("stream.schema_registry_url", "required when stream.format is avro "
                     "(Confluent wire format: the schema is fetched by id)")
        et = s.get("event_time")
        return StreamConfig(
            topic=s["topic"], format=fmt,
            schema_registry_url=(s.get("schema_registry_url") or "").rstrip("/") or None,
            event_time=EventTimeConfig(et["field"], et.get("unit", "ms")) if et else None,
            event_id_field=s.get("event_id_field"), batch_size=s.get("batch_size", 10_000),
            start_from=s.get("start_from", "earliest"),
            snapshot_interval_ms=parse_duration(s.get("snapshot_interval", 5000)))

    def prediction(self, p: dict) -> PredictionConfig:
        if "threshold" in p and "score" not in p:
            self.bad("prediction.threshold", "given without prediction.score")
        kw = {("class_" if k == "class" else k): v for k, v in p.items()}
        return PredictionConfig(**kw)

    def checks(self, c: dict) -> ChecksConfig:
        return ChecksConfig(
            family_level=c.get("family_level", 0.01),
            correction=c.get("correction", "bonferroni"),
            numeric=NumericChecks(**c.get("numeric", {})),
            categorical=CategoricalChecks(**c.get("categorical", {})),
            prediction=NumericChecks(**c.get("prediction", {})),
            fairness=FairnessChecks(**c.get("fairness", {})),
            quality=QualityChecks(**c.get("quality", {})))

    def features(self, f: dict, checks: ChecksConfig) -> FeaturesConfig:
        numeric, categorical = tuple(f.get("numeric", ())), tuple(f.get("categorical", ()))
        for name in set(numeric) & set(categorical):
            self.bad("features.categorical", f"{name!r} is listed as numeric too")
        rules = []
        for i, r in enumerate(f.get("rules", ())):
            where = f"features.rules[{i}]"
            rng = tuple(r["range"]) if "range" in r else None
            if rng and None not in rng and rng[0] > rng[1]:
                self.bad(f"{where}.range", f"low {rng[0]} is above high {rng[1]}")
            rule = FeatureRule(match=r["match"], type=r.get("type"), range=rng,
                               drift=FrozenMap(r.get("drift", {})),
                               quality=FrozenMap(r.get("quality", {})))
            hits = [n for n in numeric if rule.applies_to(n, "numeric")] + \
                   [n for n in categorical if rule.applies_to(n, "categorical")]
            if not hits:
                kind = f"{rule.type} " if rule.type else ""
                self.bad(f"{where}.match", f"{rule.match!r} matches no configured {kind}"
                         "feature (check the name or the glob)")
            elif rng and not any(n in numeric for n in hits):
                self.bad(f"{where}.range", "a range only applies to numeric features, and "
                         f"{rule.match!r} matches only categorical ones")
            rules.append(rule)
        q = checks.quality
        settings = {}
        for kind, names, base in (("numeric", numeric, checks.numeric),
                                  ("categorical", categorical, checks.categorical)):
            for n in names:
                s = dict(name=n, kind=kind, drift_enabled=base.enabled,
                         psi_floor=base.psi_floor, js_floor=base.js_floor,
                         quality_enabled=q.enabled, missing_rate_max=q.missing_rate_max,
                         type_error_rate_max=q.type_error_rate_max,
                         nonfinite_rate_max=q.nonfinite_rate_max,
                         out_of_range_rate_max=q.out_of_range_rate_max)
                if kind == "numeric":
                    s.update(ks_floor=base.ks_floor, wasserstein_floor=base.wasserstein_floor)
                else:
                    s.update(chi2=base.chi2, unseen_rate_floor=base.unseen_rate_floor)
                for rule in rules:
                    if not rule.applies_to(n, kind):
                        continue
                    if rule.range is not None and kind == "numeric":
                        s["range"] = rule.range
                    for key, v in rule.drift.items():
                        if key == "enabled":
                            s["drift_enabled"] = v
                        elif (key in ("ks_floor", "wasserstein_floor")) == (kind == "numeric") \
                                or key in ("psi_floor", "js_floor"):
                            s[key] = v
                    for key, v in rule.quality.items():
                        s["quality_enabled" if key == "enabled" else key] = v
                settings[n] = FeatureSettings(**s)
        return FeaturesConfig(numeric=numeric, categorical=categorical, rules=tuple(rules),
                              settings=FrozenMap(settings))

    def check_fields(self, feats: FeaturesConfig, p: PredictionConfig,
                     sens: SensitiveConfig | None, stream: StreamConfig) -> None:
        owner: dict[str, str] = {n: "features.numeric" for n in feats.numeric}
        owner.update({n: "features.categorical" for n in feats.categorical})
        others = [("prediction.score", p.score), ("prediction.class", p.class_),
                  ("prediction.label", p.label),
                  ("stream.event_time.field", stream.event_time and stream.event_time.field),
                  ("stream.event_id_field", stream.event_id_field)]
        if sens:  # the sensitive attribute may also be watched as a categorical feature
            others.append(("sensitive.attribute", sens.attribute))
        for where, name in others:
            if not name:
                continue
            prev = owner.get(name)
            if prev and not (where == "sensitive.attribute" and prev == "features.categorical"):
                self.bad(where, f"field {name!r} is already used by {prev}")
            owner.setdefault(name, where)
        if not (feats.numeric or feats.categorical or p.score or p.class_):
            self.bad("features", "nothing to watch: list features.numeric, "
                     "features.categorical, or a prediction.score / prediction.class")
        if sens and not (p.class_ or (p.score and p.threshold is not None)):
            self.bad("sensitive", "fairness needs the model's decision: set prediction.class, "
                     "or prediction.score with prediction.threshold")

    def windows(self, w: dict) -> WindowsConfig:
        size = parse_duration(w["size"])
        slide = parse_duration(w["slide"]) if w.get("slide") is not None else None
        if slide is not None and (slide > size or size % slide):
            self.bad("windows.slide", f"must divide windows.size ({size} ms), got {slide} ms")
        if slide == size:
            slide = None
        return WindowsConfig(
            size_ms=size, slide_ms=slide,
            allowed_lateness_ms=parse_duration(w.get("allowed_lateness", 10_000)),
            idle_timeout_ms=parse_duration(w.get("idle_timeout", 30_000)),
            min_events=w.get("min_events", 500))

    def alerts(self, a: dict) -> AlertsConfig:
        silences = []
        for i, s in enumerate(a.get("silences", ())):
            until = None
            if "until" in s:
                try:
                    t = _dt.datetime.fromisoformat(s["until"].replace("Z", "+00:00"))
                    if t.tzinfo is None:
                        raise ValueError("no time zone")
                    until = int(t.timestamp() * 1000)
                except ValueError:
                    self.bad(f"alerts.silences[{i}].until", "expected an ISO 8601 time with a "
                             f"zone like \"2026-03-01T00:00:00Z\", got {_show(s['until'])}")
            silences.append(Silence(reason=s["reason"], feature=s.get("feature", "*"),
                                    check=s.get("check", "*"), family=s.get("family", "*"),
                                    until_ms=until))
        return AlertsConfig(confirm_windows=a.get("confirm_windows", 2),
                            resolve_windows=a.get("resolve_windows", 2),
                            repeat_interval_ms=parse_duration(a.get("repeat_interval", "1h")),
                            silences=tuple(silences))

    def slack(self, s: dict) -> SlackConfig:
        token = self.secret(s, "token", "slack", required=False)
        hook = self.secret(s, "webhook_url", "slack", required=False)
        if token is None and hook is None and not any(k.startswith(("token_", "webhook_url_"))
                                                      for k in s):
            self.bad("slack.token_env", "required: give token_env / token_file (a bot token), "
                     "or webhook_url_env / webhook_url_file")
        return SlackConfig(channel=s["channel"], token=token, webhook_url=hook,
                           base_url=s.get("base_url"), runbook_url=s.get("runbook_url"),
                           mention=s.get("mention"))


# -- client settings (contain secrets: never log these dicts) ----------------------------

def kafka_client_config(cfg: MonitorConfig, environ: Mapping[str, str] | None = None) -> dict:
    """librdkafka settings for confluent-kafka clients: bootstrap, security protocol,
    SASL and TLS (secrets revealed here), then the pass-through ``kafka.properties``.
    The result holds the password: never log it.

    >>> c = from_dict({"monitor": "m", "kafka": {"bootstrap": "k:9092",
    ...     "properties": {"client.id": "sd"}}, "stream": {"topic": "t"},
    ...     "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
    ...     "reference": {"profile": "/r"}}, env={})
    >>> kafka_client_config(c)
    {'bootstrap.servers': 'k:9092', 'security.protocol': 'PLAINTEXT', 'client.id': 'sd'}
    """
    k = cfg.kafka
    out: dict[str, Any] = {"bootstrap.servers": k.bootstrap, "security.protocol": k.security_protocol}
    if k.sasl:
        out.update({"sasl.mechanism": k.sasl.mechanism, "sasl.username": k.sasl.username,
                    "sasl.password": k.sasl.password.reveal(environ)})
    if k.tls:
        for key, p, where in (("ssl.ca.location", k.tls.ca_file, "ca_file"),
                              ("ssl.certificate.location", k.tls.cert_file, "cert_file"),
                              ("ssl.key.location", k.tls.key_file, "key_file")):
            if p is not None:
                if not p.is_file():
                    raise ConfigError(f"kafka.tls.{where}", f"no such file: {p}")
                out[key] = str(p)
        if k.tls.key_password:
            out["ssl.key.password"] = k.tls.key_password.reveal(environ)
        if not k.tls.check_hostname:
            out["ssl.endpoint.identification.algorithm"] = "none"
    out.update(k.properties)
    return out


def faust_broker_settings(cfg: MonitorConfig,
                          environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` for ``faust.App``: ``kafka://host:port;...``
    and, for SASL / TLS, a ``faust.SASLCredentials`` or ``faust.SSLCredentials``. Holds the
    password: never log it."""
    k = cfg.kafka
    broker = ";".join(f"kafka://{hp}" for hp in k.bootstrap.split(","))
    creds = None
    if k.security_protocol != "PLAINTEXT":
        import ssl

        import faust
        ctx = None
        if k.security_protocol.endswith("SSL"):
            ca = k.tls.ca_file if k.tls else None
            ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
            if k.tls and k.tls.cert_file:
                pw = k.tls.key_password.reveal(environ) if k.tls.key_password else None
                ctx.load_cert_chain(str(k.tls.cert_file), str(k.tls.key_file), password=pw)
            if k.tls and not k.tls.check_hostname:
                ctx.check_hostname = False
        if k.sasl:
            creds = faust.SASLCredentials(
                username=k.sasl.username, password=k.sasl.password.reveal(environ),
                mechanism=k.sasl.mechanism, ssl_context=ctx)
        else:
            creds = faust.SSLCredentials(ctx)
    return {"broker": broker, "broker_credentials": creds}
