"""Building the config: the cross-field checks and defaults that turn a schema-valid dict
(validated by :mod:`monitor.config.validate`) into the frozen
:class:`~monitor.config.MonitorConfig`. The public entry points are
:func:`monitor.config.from_dict` and :func:`monitor.config.load`; this module is their inside.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from monitor.config.settings import (
    BOOTSTRAP_ENV, HTTP_HOST_ENV, AlertsConfig, DeadLetterConfig, CategoricalChecks, ChecksConfig,
    EventTimeConfig, FairnessChecks, FeatureRule, FeaturesConfig, FrozenMap,
    HttpConfig, KafkaConfig, MonitorConfig, NumericChecks, OutputConfig, PredictionChecks,
    PredictionConfig, QualityChecks, ReferenceConfig, RegistryAuth, SaslConfig, Secret,
    SensitiveConfig, SlackConfig, StreamConfig, TlsConfig, TopicsConfig, TriggersConfig,
    WindowsConfig, parse_duration, AlertmanagerConfig, WebhookConfig, Stage1Config)
from monitor.errors import ConfigError
from monitor.config.features import feature_settings
from monitor.config.validate import (  # noqa: F401  (validate, SCHEMA_PATH: the package's)
    _SECRET_KEYS, SCHEMA_PATH, _show, validate)
from monitor.records import Silence


class Builder:
    """Turns a schema-valid dict into the frozen config, collecting cross-field problems."""

    def __init__(self, d: dict, base: Path, env: Mapping[str, str],
                 kafka: bool = True) -> None:
        self.d, self.base, self.env = d, base, env
        #: whether the config must say where Kafka is (``run``, ``check``); ``replay`` and
        #: ``profile build`` read files and do without kafka.bootstrap and stream.topic
        self.need_kafka = kafka
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
        kafka = self.kafka(d.get("kafka") or {}, name)
        stream = self.stream(d.get("stream") or {})
        if self.need_kafka:
            for path, given in (("kafka.bootstrap", kafka.bootstrap),
                                ("stream.topic", stream.topic)):
                if not given:
                    self.bad(path, "required field is missing (to read Kafka; replay and "
                             "profile build work without it)")
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
            ("triggers", "triggers"), ("dead_letter", "dlq"), ("state", "state"),
            ("stage2_state", "stage2-state"), ("silences", "silences"))},
            **self.topic_policies(t))
        used = [(k, v) for k, v in vars(topics).items() if stream.topic and v == stream.topic]
        for k, _ in used:
            self.bad(f"topics.{k}", f"must differ from stream.topic ({stream.topic!r})")
        o = d.get("output") or {}
        output = OutputConfig(reports_jsonl=self.path(o.get("reports_jsonl")))
        alerts = self.alerts(d.get("alerts") or {})
        slack = self.slack(d["slack"]) if d.get("slack") else None
        am = self.alertmanager(d["alertmanager"]) if d.get("alertmanager") else None
        hooks = tuple(self.webhook(w, i) for i, w in enumerate(d.get("webhooks") or []))
        names = [h.name for h in hooks]
        for n in {n for n in names if names.count(n) > 1}:
            self.bad("webhooks", f"two webhooks are named {n!r}: give each its own name")
        tr = dict(d.get("triggers") or {})
        if "cooldown" in tr:
            tr["cooldown_ms"] = parse_duration(tr.pop("cooldown"))
        triggers = TriggersConfig(**tr)
        if triggers.enabled and topics.triggers_retention_ms < triggers.cooldown_ms:
            self.bad("topics.retention.triggers", "must be at least triggers.cooldown: the "
                     "cooldowns are rebuilt from the triggers topic after a restart")
        dead_letter = self.dead_letter(d.get("dead_letter") or {})
        stage1 = Stage1Config(**(d.get("stage1") or {}))
        http = HttpConfig(**{**(d.get("http") or {}),
                             **({"host": self.env[HTTP_HOST_ENV]} if self.env.get(HTTP_HOST_ENV)
                                else {})})
        from monitor.config.labels import build_labels, build_model

        model = build_model(d.get("model"), name)
        if model.version_field:
            if stream.format == "avro":
                self.bad("model.version_field", "not read from Avro events yet: remove it "
                         "and set model.version, or send JSON")
            if model.version_field not in stream.known_fields:  # read: not a schema change
                stream = replace(stream, known_fields=(*stream.known_fields,
                                                       model.version_field))
        labels = build_labels(d.get("labels"), self.bad, features.categorical,
                              prediction.positive_label, stream.event_id_field)
        from monitor.config.slices import build_slices

        slices = build_slices(d.get("slices"), self.bad, features.categorical)
        if self.problems:
            raise ConfigError(self.problems[0][0], self.problems[0][1], self.problems)
        return MonitorConfig(model=model, labels=labels, slices=slices, monitor=name, kafka=kafka, stream=stream, features=features,
                             prediction=prediction, sensitive=sensitive, windows=windows,
                             reference=reference, checks=checks, topics=topics, output=output,
                             alerts=alerts, slack=slack, triggers=triggers, http=http,
                             dead_letter=dead_letter, alertmanager=am, webhooks=hooks,
                             stage1=stage1)

    def kafka(self, k: dict, name: str) -> KafkaConfig:
        b = k.get("bootstrap", "")
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

    def topic_policies(self, t: dict) -> dict:
        r = t.get("retention") or {}
        out = {f"{k}_retention_ms": parse_duration(r[k])
               for k in ("partials", "reports", "alerts", "triggers") if k in r}
        if "replication_factor" in t:
            out["replication_factor"] = t["replication_factor"]
        return out

    def dead_letter(self, d: dict) -> DeadLetterConfig:
        return DeadLetterConfig(payload=d.get("payload", "raw"),
                                drop_fields=tuple(d.get("drop_fields", ())),
                                retention_ms=parse_duration(d.get("retention", "7d")))

    def registry(self, s: dict) -> RegistryAuth | None:
        r = s.get("schema_registry")
        if not r:
            return None
        url = s.get("schema_registry_url") or ""
        pw = self.secret(r, "password", "stream.schema_registry", required=False)
        token = self.secret(r, "token", "stream.schema_registry", required=False)
        if ("username" in r) != (pw is not None):
            self.bad("stream.schema_registry.username", "username and password_env / "
                     "password_file go together (basic auth)")
        if pw is not None and token is not None:
            self.bad("stream.schema_registry.token_env", "give basic auth (username + "
                     "password) or a bearer token, not both")
        if r.get("ca_file") and not url.startswith("https://"):
            self.bad("stream.schema_registry.ca_file", "only used with an https:// "
                     "schema_registry_url")
        return RegistryAuth(username=r.get("username"), password=pw, token=token,
                            ca_file=self.path(r.get("ca_file")))

    def stream(self, s: dict) -> StreamConfig:
        fmt = s.get("format", "json")
        if fmt == "avro" and not s.get("schema_registry_url"):
            self.bad("stream.schema_registry_url", "required when stream.format is avro "
                     "(Confluent wire format: the schema is fetched by id)")
        url = s.get("schema_registry_url") or ""
        if "@" in url.split("//", 1)[-1].split("/", 1)[0]:
            self.bad("stream.schema_registry_url", "credentials in the URL would be echoed in "
                     "errors: give stream.schema_registry.username and password_env (or "
                     "token_env) instead")
        et = s.get("event_time")
        return StreamConfig(
            topic=s.get("topic", ""), format=fmt,
            schema_registry_url=(s.get("schema_registry_url") or "").rstrip("/") or None,
            schema_registry=self.registry(s),
            event_time=EventTimeConfig(et["field"], et.get("unit", "ms")) if et else None,
            event_id_field=s.get("event_id_field"),
            known_fields=tuple(s.get("known_fields", ())), batch_size=s.get("batch_size", 10_000),
            start_from=s.get("start_from", "earliest"),
            snapshot_interval_ms=parse_duration(s.get("snapshot_interval", "5s")),
            max_future_skew_ms=parse_duration(s.get("max_future_skew", "1d")))

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
            prediction=PredictionChecks(**c.get("prediction", {})),
            fairness=FairnessChecks(**c.get("fairness", {})),
            quality=self.quality(c.get("quality", {})))

    def quality(self, q: dict) -> QualityChecks:
        q = dict(q)
        if q.get("max_event_delay") is not None:
            q["max_event_delay_ms"] = parse_duration(q.pop("max_event_delay"))
        q.pop("max_event_delay", None)
        return QualityChecks(**q)

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
        settings = {}
        for kind, names in (("numeric", numeric), ("categorical", categorical)):
            for n in names:
                settings[n] = feature_settings(n, kind, checks, rules)
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
            allowed_lateness_ms=parse_duration(w.get("allowed_lateness", "10s")),
            idle_timeout_ms=parse_duration(w.get("idle_timeout", "30s")),
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
                            reopen_windows=a.get("reopen_windows", 3),
                            repeat_interval_ms=parse_duration(a.get("repeat_interval", "1h")),
                            silences=tuple(silences))

    def webhook(self, w: dict, i: int) -> WebhookConfig:
        where = f"webhooks[{i}]"
        given = [k for k in ("url", "url_env", "url_file") if w.get(k) is not None]
        if len(given) != 1:
            self.bad(f"{where}.url", "give exactly one of url, url_env or url_file")
        url_secret = self.secret(w, "url", where, required=False) if len(given) == 1 else None
        return WebhookConfig(name=w.get("name", f"webhook-{i}"), url=w.get("url"),
                             url_secret=url_secret,
                             signing_secret=self.secret(w, "signing_secret", where, False),
                             timeout_ms=parse_duration(w.get("timeout", "10s")))

    def alertmanager(self, a: dict) -> AlertmanagerConfig:
        labels = a.get("labels") or {}
        for k in labels:
            if k in ("alertname", "monitor", "model", "version", "feature", "check", "slice",
                     "family", "severity"):
                self.bad(f"alertmanager.labels.{k}", "set by streamdrift for every alert; "
                         "choose another label name")
        return AlertmanagerConfig(
            url=a["url"], status_url=a.get("status_url"),
            labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            resend_interval_ms=parse_duration(a.get("resend_interval", "1m")),
            timeout_ms=parse_duration(a.get("timeout", "10s")))

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
