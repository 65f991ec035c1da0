"""Shared pieces of the secured tests: a monitor config for the SASL_SSL broker, the ACLs the
monitor's user is granted, and reading every record of a set of topics as the admin."""

from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from monitor.access import needs
from monitor.config import MonitorConfig
from monitor.topics import wanted_topics
from tests.e2e_harness import config_dict

PASSWORD_ENV = "SD_TEST_KAFKA_PASSWORD"
KEY_PASSWORD_ENV = "SD_TEST_KEY_PASSWORD"


def secure_config(tmp: Path, broker, topic: str, *, password_from: str = "env",
                  **kafka) -> dict:
    """The e2e config, attached through SASL_SSL as ``monitor`` with mutual TLS on top (an
    encrypted client key). ``password_from``: ``env`` (SD_TEST_KAFKA_PASSWORD) or ``file``;
    the key password comes from the other place, so one config exercises both."""
    d = config_dict(tmp, broker.bootstrap, topic)
    secrets_dir = tmp / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    (secrets_dir / "kafka-password").write_text(broker.users["monitor"] + "\n")
    (secrets_dir / "key-password").write_text(broker.tls.client_key_password + "\n")
    sasl = {"mechanism": "SCRAM-SHA-512", "username": "monitor"}
    tls = {"ca_file": str(broker.tls.ca), "cert_file": str(broker.tls.client_cert),
           "key_file": str(broker.tls.client_key)}
    if password_from == "env":
        sasl["password_env"] = PASSWORD_ENV
        tls["key_password_file"] = str(secrets_dir / "key-password")
    else:
        sasl["password_file"] = str(secrets_dir / "kafka-password")
        tls["key_password_env"] = KEY_PASSWORD_ENV
    d["kafka"] = {"bootstrap": broker.bootstrap, "session_timeout_ms": 6000,
                  "security_protocol": "SASL_SSL", "sasl": sasl, "tls": tls, **kafka}
    return d


def secret_env(broker) -> dict[str, str]:
    return {PASSWORD_ENV: broker.users["monitor"],
            KEY_PASSWORD_ENV: broker.tls.client_key_password}


def with_kafka(d: dict, **changes) -> dict:
    out = copy.deepcopy(d)
    out["kafka"].update(changes)
    return out


def monitor_grants(cfg: MonitorConfig) -> list[tuple[str, str, str, str]]:
    """Exactly what :func:`monitor.access.needs` lists, plus CREATE on the topics the monitor
    creates: one ACL per (resource, operation), literal except the prefixed status groups."""
    grants = {(n.kind, n.name, n.pattern, n.operation.lower()) for n in needs(cfg)}
    grants |= {("topic", p.name, "literal", "create") for p in wanted_topics(cfg)}
    return sorted(grants)


def read_all(client: dict, topics: list[str], timeout_s: float = 30.0) -> dict[str, list]:
    """Every record of every partition of ``topics`` (as the admin), up to the current end."""
    c = Consumer({**client, "group.id": f"scan-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    out: dict[str, list] = {t: [] for t in topics}
    md = c.list_topics(timeout=10).topics
    parts, ends = [], {}
    for t in topics:
        if t not in md:
            continue
        for p in md[t].partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=10)
            if hi > lo:
                parts.append(TopicPartition(t, p, lo))
                ends[(t, p)] = hi
    c.assign(parts)
    done: set = set()
    deadline = time.monotonic() + timeout_s
    while len(done) < len(ends) and time.monotonic() < deadline:
        for m in c.consume(1000, timeout=0.5):
            if m.error() is not None:
                continue
            out[m.topic()].append(m)
            if m.offset() + 1 >= ends[(m.topic(), m.partition())]:
                done.add((m.topic(), m.partition()))
    c.close()
    return out
