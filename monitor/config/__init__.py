"""The monitor's config: one YAML file, validated at start, turned into one frozen object.

:func:`load` reads the file, validates it against ``schemas/monitor-config.schema.json``
(JSON Schema 2020-12), checks what a schema cannot say (avro needs a registry URL, a slide
must divide the window, a rule must match a feature ...) and builds a :class:`MonitorConfig`
of frozen dataclasses: durations are ints of milliseconds, relative paths are resolved against
the config file's folder, defaults are filled in (the validation and building live in
:mod:`monitor.config.build`). Two environment variables override the file:
``STREAMDRIFT_KAFKA_BOOTSTRAP`` (kafka.bootstrap) and ``STREAMDRIFT_HTTP_HOST`` (http.host,
e.g. ``0.0.0.0`` in a container). Anything wrong raises
:class:`~monitor.errors.ConfigError` naming every bad field by its path::

    windows.size: 60 has no unit; write 60s or 60ms

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
>>> parse_duration("1.5s"), parse_duration("250ms")
(1500, 250)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from monitor.config.build import Builder
from monitor.config.build import validate as _validate
from monitor.config.settings import *  # noqa: F401,F403  (the package's face: every settings type)
from monitor.config.settings import MonitorConfig, parse_duration  # noqa: F401
from monitor.errors import ConfigError


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


def load(path: str | os.PathLike, *, env: Mapping[str, str] | None = None,
         kafka: bool = True) -> MonitorConfig:
    """Read, validate and build the config in file ``path``. Relative paths in it are
    resolved against the file's folder. ``kafka=False`` (replay, profile build): the file
    need not say where Kafka is. Raises :class:`ConfigError`."""
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
    cfg = from_dict(data, base_dir=p.resolve().parent, env=env, kafka=kafka)
    return replace(cfg, source=p.resolve())


def from_dict(d: Any, *, base_dir: str | os.PathLike | None = None,
              env: Mapping[str, str] | None = None, kafka: bool = True) -> MonitorConfig:
    """Validate and build a config from its dict form (what the YAML file parses to).
    ``env`` (default ``os.environ``) supplies the overrides ``STREAMDRIFT_KAFKA_BOOTSTRAP``
    (kafka.bootstrap) and ``STREAMDRIFT_HTTP_HOST`` (http.host). ``kafka=False``: a config
    for files only (``replay``, ``profile build``) may leave out kafka.bootstrap and
    stream.topic (they are then empty strings).

    >>> from_dict({"monitor": "m", "features": {"numeric": ["x"]},
    ...            "windows": {"size": "1m"}, "reference": {"profile": "/r"}},
    ...           env={}, kafka=False).stream.topic
    ''
    """
    env = os.environ if env is None else env
    validate(d)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return Builder(d, base, env, kafka=kafka).build()


def validate(d: Any) -> None:
    """Check ``d`` against the JSON Schema; raise one ConfigError listing every problem."""
    _validate(d)

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
                try:
                    ctx.load_cert_chain(str(k.tls.cert_file), str(k.tls.key_file), password=pw)
                except (ssl.SSLError, OSError) as e:
                    where = k.tls.key_password.field if k.tls.key_password else \
                        "kafka.tls.key_file"
                    raise ConfigError(where, "cannot load the client certificate "
                                      "and key (a wrong kafka.tls.key_password, or not PEM): "
                                      f"{getattr(e, 'reason', None) or e}") from None
            if k.tls and not k.tls.check_hostname:
                ctx.check_hostname = False
        if k.sasl:
            creds = faust.SASLCredentials(
                username=k.sasl.username, password=k.sasl.password.reveal(environ),
                mechanism=k.sasl.mechanism, ssl_context=ctx)
        else:
            creds = faust.SSLCredentials(ctx)
    return {"broker": broker, "broker_credentials": creds}


def registry_options(cfg: MonitorConfig,
                     environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``headers`` (basic auth or bearer token, secrets revealed here) and ``ssl_context``
    (the registry's CA) for :class:`~monitor.stage1.schema_registry.SchemaRegistry`. Holds
    the secret: never log it.

    >>> c = from_dict({"monitor": "m", "kafka": {"bootstrap": "k:9092"},
    ...     "stream": {"topic": "t", "format": "avro", "schema_registry_url": "http://r:8081",
    ...                "schema_registry": {"username": "u", "password_env": "RP"}},
    ...     "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
    ...     "reference": {"profile": "/r"}}, env={})
    >>> registry_options(c, {"RP": "p"})["headers"]
    {'Authorization': 'Basic dTpw'}
    """
    import base64
    import ssl

    r = cfg.stream.schema_registry
    headers: dict[str, str] = {}
    ctx = None
    if r is not None:
        if r.password is not None:
            pair = f"{r.username}:{r.password.reveal(environ)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif r.token is not None:
            headers["Authorization"] = f"Bearer {r.token.reveal(environ)}"
        if r.ca_file is not None:
            if not r.ca_file.is_file():
                raise ConfigError("stream.schema_registry.ca_file", f"no such file: {r.ca_file}")
            ctx = ssl.create_default_context(cafile=str(r.ca_file))
    return {"headers": headers, "ssl_context": ctx}
