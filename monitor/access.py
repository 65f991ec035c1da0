"""What the monitor needs from a Kafka cluster, and what is missing, in one clear line each.

:func:`needs` lists every (resource, operation) the monitor's principal uses — topics it
reads and writes, consumer groups it joins, topics it creates — with the stage that uses it.
:func:`connect` opens an admin connection and turns a failure (wrong password, untrusted
certificate, hostname mismatch, nothing listening) into one line that names the setting to
fix. :func:`missing_access` asks the broker which operations the principal may perform on
each resource (``include_authorized_operations``: no cluster-wide rights are needed to ask)
and names each missing ACL with the ``kafka-acls`` command that grants it.

``streamdrift run`` calls these before it starts anything (so a missing ACL is one line at
start, not an endless retry loop in a client library); ``streamdrift check`` prints all of it.

>>> from monitor.config import from_dict
>>> cfg = from_dict({"monitor": "m", "kafka": {"bootstrap": "k:9092"},
...     "stream": {"topic": "t"}, "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
...     "reference": {"profile": "/r"}}, env={})
>>> [(n.kind, n.name, n.operation) for n in needs(cfg, "source")][:3]
[('topic', 't', 'READ'), ('topic', 'streamdrift.m.partials', 'WRITE'), ('topic', 'streamdrift.m.state', 'READ')]
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from monitor.config import MonitorConfig
from monitor.errors import StreamdriftError
from monitor.topics import faust_app_id, wanted_topics

log = logging.getLogger("streamdrift.access")

STAGES = ("source", "aggregate", "sinks")


class AccessError(StreamdriftError):
    """The cluster cannot be used as configured; ``lines`` holds one problem each."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Need:
    kind: str  # topic | group
    name: str
    operation: str  # READ | WRITE | CREATE | DESCRIBE
    stage: str  # source | aggregate | sinks | any (every stage: the status page)
    why: str
    pattern: str = "literal"  # prefixed: a group id made per process from this prefix


def principal(cfg: MonitorConfig) -> str:
    """The principal the broker sees: the SASL user, else the client certificate's DN."""
    k = cfg.kafka
    if k.sasl:
        return f"User:{k.sasl.username}"
    if k.tls and k.tls.cert_file:
        try:
            cert = ssl._ssl._test_decode_cert(str(k.tls.cert_file))  # type: ignore[attr-defined]
            rdns = [f"{a}={v}" for rdn in reversed(cert["subject"]) for a, v in rdn]
            short = {"commonName": "CN", "organizationName": "O", "countryName": "C",
                     "organizationalUnitName": "OU", "localityName": "L",
                     "stateOrProvinceName": "ST"}
            return "User:" + ",".join(short.get(x.split("=")[0], x.split("=")[0]) + "="
                                      + x.split("=", 1)[1] for x in rdns)
        except Exception:
            return "User:<the client certificate's subject>"
    return "User:ANONYMOUS"


def needs(cfg: MonitorConfig, stage: str = "all") -> list[Need]:
    """Every operation the monitor performs, for ``stage`` (all | source | aggregate |
    sinks). Topics the monitor creates also need CREATE while they do not exist."""
    t, g, app = cfg.topics, cfg.kafka.group_id, faust_app_id(cfg)
    out = [
        Need("topic", cfg.stream.topic, "READ", "source", "stage 1 consumes the stream"),
        Need("topic", t.partials, "WRITE", "source", "stage 1 publishes window partials"),
        Need("topic", t.state, "READ", "source", "stage 1 restores partition state"),
        Need("topic", t.state, "WRITE", "source", "stage 1 stores partition state"),
        Need("topic", t.dead_letter, "WRITE", "source", "stage 1 dead-letters bad messages"),
        Need("group", g, "READ", "source", "stage 1's consumer group"),
        Need("group", f"{cfg.monitor}-state-reader", "DESCRIBE", "source",
             "stage 1 reads its state topic under this group id (assigned, never joined)"),
        Need("topic", t.partials, "READ", "aggregate", "stage 2 consumes partials"),
        Need("topic", t.reports, "WRITE", "aggregate", "stage 2 publishes window reports"),
        Need("topic", t.alerts, "WRITE", "aggregate", "stage 2 publishes alerts"),
        Need("group", app, "READ", "aggregate", "stage 2's Faust consumer group"),
        Need("topic", t.stage2_state, "READ", "aggregate", "stage 2 restores its state"),
        Need("topic", t.stage2_state, "WRITE", "aggregate", "stage 2 commits its state"),
        Need("group", f"{g}-stage2-state-reader", "DESCRIBE", "aggregate",
             "stage 2 reads its state topic under this group id (assigned, never joined)"),
        Need("topic", t.silences, "READ", "aggregate", "stage 2 follows the silences"),
        Need("group", f"{t.silences}.reader", "DESCRIBE", "aggregate",
             "stage 2 reads the silences under this group id (assigned, never joined)"),
        # not checkable with describe (the preflight skips it); without it
        # init_transactions fails with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        Need("transactional_id", f"{g}-stage2", "WRITE", "aggregate",
             "stage 2 commits each step in one transaction"),
        Need("transactional_id", f"{g}-stage2", "DESCRIBE", "aggregate",
             "stage 2 commits each step in one transaction"),
    ]
    for p in wanted_topics(cfg):
        if p.role == "faust":
            out += [Need("topic", p.name, op, "aggregate", "Faust's assignor topic")
                    for op in ("READ", "WRITE")]
    if cfg.triggers.enabled or cfg.slack:
        out.append(Need("topic", t.alerts, "READ", "sinks", "the sinks consume alerts"))
    if cfg.triggers.enabled:
        out += [Need("topic", t.triggers, "WRITE", "sinks", "retraining triggers"),
                Need("topic", t.triggers, "READ", "sinks", "trigger cooldowns are restored"),
                Need("group", f"{g}-triggers", "READ", "sinks", "the trigger sink's group"),
                Need("group", "streamdrift-trigger-restore", "DESCRIBE", "sinks",
                     "the trigger sink restores cooldowns under this group id (assigned)")]
    if cfg.slack:
        out.append(Need("group", f"{g}-slack", "READ", "sinks", "the Slack sink's group"))
    out += [Need("topic", t.reports, "READ", "any", "the status page reads window reports"),
            Need("topic", t.alerts, "READ", "any", "the status page reads alerts"),
            Need("group", "streamdrift-status-", "DESCRIBE", "any",
                 "the status page reads under a fresh group id with this prefix (assigned)",
                 "prefixed")]
    return [n for n in out if stage == "all" or n.stage in (stage, "any")]


# -- connecting ----------------------------------------------------------------------------

def connect(cfg: MonitorConfig, client: dict[str, Any], timeout_s: float = 10.0):
    """An AdminClient that has reached the cluster, or :class:`AccessError` with one line
    naming the setting to fix."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list = []
    quiet = logging.getLogger("streamdrift.librdkafka.preflight")
    quiet.propagate = False  # librdkafka repeats each failure many times: errors_cb has it
    quiet.addHandler(logging.NullHandler())
    try:
        admin = AdminClient({**client, "error_cb": errors.append, "logger": quiet})
    except KafkaException as e:
        raise AccessError([_client_setup_error(cfg, e)]) from None
    import time

    deadline = time.monotonic() + timeout_s
    while True:  # short tries, so a refused password or certificate ends it at once
        try:
            admin.list_topics(timeout=1.0)
            return admin
        except KafkaException as e:
            admin.poll(0.2)  # serve the error callbacks
            fatal = any(x.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL)
                        or "SSL" in x.str() for x in errors)
            if fatal or time.monotonic() > deadline:
                raise AccessError([explain_connect_failure(cfg, errors, e)]) from None


def _client_setup_error(cfg: MonitorConfig, e: Exception) -> str:
    text = str(e.args[0].str() if e.args and hasattr(e.args[0], "str") else e)
    if "ssl.key" in text or "private key" in text.lower() or "bad decrypt" in text:
        t = cfg.kafka.tls
        where = t.key_password.field if t and t.key_password else "kafka.tls.key_file"
        return (f"{where}: cannot open kafka.tls.key_file with the given key password "
                "(wrong password, or a key in another format)")
    if "ssl.ca" in text or "ssl.certificate" in text:
        return f"kafka.tls: cannot load the CA or client certificate: {text}"
    return f"kafka: the client settings were refused: {text}"


def explain_connect_failure(cfg: MonitorConfig, errors: list, exc: Exception) -> str:
    """One line for why ``list_topics`` failed, from librdkafka's error callbacks."""
    from confluent_kafka import KafkaError

    k = cfg.kafka
    codes = {e.code() for e in errors}
    texts = " ".join(e.str() for e in errors)
    if "SASL authentication error" in texts or (KafkaError._AUTHENTICATION in codes
                                                and "SSL" not in texts):
        where = ("kafka.sasl.password_env" if k.sasl and k.sasl.password.env else
                 "kafka.sasl.password_file")
        user = k.sasl.username if k.sasl else "?"
        mech = k.sasl.mechanism if k.sasl else "?"
        return (f"{where}: the broker refused user {user!r} ({mech}): wrong password or "
                f"unknown user (check {where}, kafka.sasl.username and kafka.sasl.mechanism)")
    if "SSL" in texts or "certificate" in texts or KafkaError._SSL in codes:
        tls_line = tls_problem(cfg)
        if tls_line:
            return tls_line
        return f"kafka.tls: the TLS handshake with {k.bootstrap} failed: {_first(errors)}"
    if KafkaError._AUTHENTICATION in codes:
        return f"kafka: authentication failed at {k.bootstrap}: {_first(errors)}"
    return (f"kafka.bootstrap: no broker answered at {k.bootstrap} as "
            f"{k.security_protocol} ({_first(errors) or exc}); check the address, "
            "the port and kafka.security_protocol")


def _first(errors: list) -> str:
    return errors[0].str() if errors else ""


def tls_problem(cfg: MonitorConfig, timeout_s: float = 5.0) -> str | None:
    """A TLS handshake with the first bootstrap broker, as the monitor's settings make it;
    one line naming the setting if the broker's certificate is not accepted, else None."""
    k = cfg.kafka
    host, _, port = k.bootstrap.split(",")[0].strip().rpartition(":")
    ca = k.tls.ca_file if k.tls else None
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    ctx.check_hostname = bool(k.tls.check_hostname) if k.tls else True
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
            with ctx.wrap_socket(sock, server_hostname=host):
                return None
    except ssl.SSLCertVerificationError as e:
        if e.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return (f"kafka.bootstrap: the broker's certificate does not name {host!r} "
                    "(hostname mismatch): use a host name the certificate lists, or, for a "
                    "test cluster only, kafka.tls.check_hostname: false")
        src = f"kafka.tls.ca_file ({ca})" if ca else "the system trust store (no kafka.tls.ca_file)"
        return (f"kafka.tls.ca_file: the broker's certificate is not trusted by {src}: "
                f"{e.verify_message}; set kafka.tls.ca_file to the CA that signed it")
    except (OSError, ValueError) as e:
        return f"kafka.tls: TLS handshake with {host}:{port} failed: {e}"


# -- authorization -------------------------------------------------------------------------

def acl_command(cfg: MonitorConfig, need: Need) -> str:
    res = {"topic": "--topic", "group": "--group"}.get(need.kind, "--transactional-id")
    prefixed = " --resource-pattern-type prefixed" if need.pattern == "prefixed" else ""
    return (f"kafka-acls --bootstrap-server {cfg.kafka.bootstrap} --command-config admin.properties"
            f" --add --allow-principal {principal(cfg)} --operation {need.operation.title()} "
            f"{res} {need.name}{prefixed}")


def missing_access(cfg: MonitorConfig, admin, stage: str = "all",
                   timeout_s: float = 15.0) -> tuple[list[str], list[str]]:
    """``(problems, to_create)``: one line per missing ACL (naming the ``kafka-acls``
    command that grants it) or missing monitored topic; and the monitor's own topics that do
    not exist yet (created at start; their CREATE right is checked here)."""
    from confluent_kafka import TopicCollection

    wanted = needs(cfg, stage)
    owned = {p.name: p for p in wanted_topics(cfg)}
    topics = sorted({n.name for n in wanted if n.kind == "topic"})
    groups = sorted({n.name for n in wanted if n.kind == "group"})
    probe = {n.name: n.name + "check" for n in wanted if n.pattern == "prefixed"}
    allowed: dict[tuple[str, str], set[str] | None] = {}  # None: does not exist
    problems, to_create = [], []
    futs = admin.describe_topics(TopicCollection(topics), include_authorized_operations=True,
                                 request_timeout=timeout_s)
    for name, f in futs.items():
        try:
            d = f.result()
            allowed[("topic", name)] = {op.name for op in d.authorized_operations or ()}
        except Exception as e:
            code = _code(e)
            if code == "UNKNOWN_TOPIC_OR_PART":
                allowed[("topic", name)] = None
            else:  # TOPIC_AUTHORIZATION_FAILED: not even DESCRIBE
                allowed[("topic", name)] = set()
    for name in groups:  # a prefixed grant is asked about one id under the prefix
        allowed[("group", name)] = _group_ops(admin, probe.get(name, name), timeout_s)
    for (kind, name), ops in sorted(allowed.items()):
        if ops is None and name not in owned:
            problems.append(f"stream.topic: the topic {name!r} does not exist on "
                            f"{cfg.kafka.bootstrap}")
        elif ops is None:
            to_create.append(name)
    if to_create:
        problems += _create_rights(cfg, admin, [owned[n] for n in to_create], timeout_s)
    why: dict[tuple, list[str]] = {}  # one line per (resource, operation), every use named
    for n in wanted:
        why.setdefault((n.kind, n.name, n.operation), []).append(n.why)
    reported = set()
    for n in wanted:
        key = (n.kind, n.name, n.operation)
        if key in reported:
            continue
        reported.add(key)
        n = Need(n.kind, n.name, n.operation, n.stage, "; ".join(why[key]), n.pattern)
        ops = allowed.get((n.kind, n.name))
        if ops is None:
            continue  # checked once it exists (run creates it, then checks again)
        if n.operation not in ops and "ALL" not in ops:
            what = f"{n.kind}s prefixed" if n.pattern == "prefixed" else n.kind
            problems.append(f"ACL missing: {principal(cfg)} may not {n.operation} {what} "
                            f"{n.name!r} ({n.why}): {acl_command(cfg, n)}")
    return problems, to_create


def _group_ops(admin, name: str, timeout_s: float) -> set[str]:
    try:
        d = admin.describe_consumer_groups([name], include_authorized_operations=True,
                                           request_timeout=timeout_s)[name].result()
        return {op.name for op in d.authorized_operations or ()}
    except Exception as e:
        if _code(e) == "GROUP_AUTHORIZATION_FAILED":
            return set()
        log.debug("describe group %s: %s", name, e)
        return {"READ", "DESCRIBE"}  # an older broker that cannot say: assume it works


def _create_rights(cfg: MonitorConfig, admin, policies, timeout_s: float) -> list[str]:
    from confluent_kafka.admin import NewTopic

    new = [NewTopic(p.name, p.partitions, cfg.topics.replication_factor, config=p.config)
           for p in policies]
    out = []
    for name, f in admin.create_topics(new, validate_only=True,
                                       request_timeout=timeout_s).items():
        try:
            f.result()
        except Exception as e:
            code = _code(e)
            if code == "TOPIC_ALREADY_EXISTS":
                continue
            need = Need("topic", name, "CREATE", "all", "the monitor creates its topics")
            if code in ("TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED"):
                out.append(f"ACL missing: {principal(cfg)} may not CREATE topic {name!r} "
                           f"(it does not exist yet; create it as an admin with `streamdrift "
                           f"check --create-topics`, or grant: {acl_command(cfg, need)})")
            else:
                out.append(f"topic {name!r} cannot be created with its policy: {e}")
    return out


def _code(e: Exception) -> str:
    err = e.args[0] if e.args else None
    return err.name() if hasattr(err, "name") else type(e).__name__


def preflight(cfg: MonitorConfig, client: dict[str, Any], stage: str = "all") -> None:
    """What ``streamdrift run`` does before starting: connect, check every ACL the stage
    needs, create the monitor's missing topics, check their ACLs again. Raises
    :class:`AccessError` (one line per problem) instead of starting a doomed monitor."""
    from monitor.topics import ensure_topics

    admin = connect(cfg, client)
    problems, to_create = missing_access(cfg, admin, stage)
    if problems:
        raise AccessError(problems)
    if to_create:
        ensure_topics(cfg, client)
        problems, _ = missing_access(cfg, admin, stage)
        if problems:
            raise AccessError(problems)
