"""A local Apache Kafka broker with a SASL_SSL listener, SCRAM users and ACLs, for tests.

The same jars and JVM launch as :class:`~monitor.dev.kafka.DevKafka`, configured like a
production cluster a monitor attaches to:

- a client listener ``SASL_SSL://127.0.0.1:<port>`` (loopback only), SCRAM-SHA-512, and a
  mutual-TLS one, ``SSL://127.0.0.1:<ssl_port>`` (client certificate required);
- the users (``admin`` and the ones asked for) are created at format time with
  ``kafka-storage format --add-scram``, so no plaintext listener is ever needed to add them;
- TLS certificates made at start with ``openssl`` in the broker's temp folder (never
  committed): a throw-away CA, a broker certificate for ``IP:127.0.0.1`` only (so a client
  that dials ``localhost`` sees a hostname mismatch), and a client certificate whose key is
  encrypted with a passphrase (mutual TLS on top of SASL: ``ssl.client.auth=requested``);
- the StandardAuthorizer with ``allow.everyone.if.no.acl.found=false``: ``admin`` is the
  super user, every other user gets exactly the ACLs a test grants with :meth:`allow`.

The controller listener is PLAINTEXT on another loopback port and its principal
(``User:ANONYMOUS``, the broker talking to its own controller) is a super user; clients never
reach it (it is not advertised and the SASL_SSL listener never yields ANONYMOUS).

>>> SecureKafka.scram_arg("monitor", "pw")
'SCRAM-SHA-512=[name=monitor,password=pw]'
"""

from __future__ import annotations

import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.dev.kafka import DevKafka, KafkaUnavailable, free_port

MECHANISM = "SCRAM-SHA-512"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one throw-away PKI (made by :func:`make_pki`)."""

    ca: Path  # the CA certificate clients trust
    other_ca: Path  # a CA that signed nothing here: "untrusted certificate" for tests
    broker_keystore: Path  # broker key + certificate chain (PEM keystore)
    client_cert: Path
    client_key: Path  # encrypted with ``client_key_password``
    client_key_password: str


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KafkaUnavailable(f"openssl {args[0]} failed: {proc.stderr.strip()[-500:]}")


def make_pki(folder: Path, key_password: str) -> TlsFiles:
    """A CA, a broker certificate for IP:127.0.0.1 and a client certificate, as PEM files
    in ``folder`` (EC P-256 keys: made in milliseconds). Needs ``openssl`` on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                 "-days", "2", "-subj", f"/CN=streamdrift test {ca}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    (folder / "broker.ext").write_text("subjectAltName=IP:127.0.0.1\n"
                                       "extendedKeyUsage=serverAuth,clientAuth\n")
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("broker", "client"):
        _openssl("req", *ec, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=streamdrift-{name}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
                 "-extfile", f"{name}.ext", cwd=folder)
    (folder / "client-key.pass").write_text(key_password)
    _openssl("pkcs8", "-topk8", "-in", "client.key", "-out", "client-enc.key",
             "-passout", "file:client-key.pass", "-v2", "aes-256-cbc", cwd=folder)
    (folder / "client-key.pass").unlink()
    keystore = folder / "broker-keystore.pem"
    keystore.write_text((folder / "broker.key").read_text() + (folder / "broker.pem").read_text()
                        + (folder / "ca.pem").read_text())
    for p in folder.iterdir():
        p.chmod(0o600)
    return TlsFiles(ca=folder / "ca.pem", other_ca=folder / "other-ca.pem",
                    broker_keystore=keystore, client_cert=folder / "client.pem",
                    client_key=folder / "client-enc.key", client_key_password=key_password)


class SecureKafka(DevKafka):
    """One local KRaft broker behind SASL_SSL + SCRAM-SHA-512 + ACLs.

    ``SecureKafka(users={"monitor": "pw"}).start()``; :attr:`admin_config` is a librdkafka
    config for the super user, :meth:`client_config` one for any user, :meth:`allow` and
    :meth:`deny` add or remove ACLs.
    """

    def __init__(self, users: dict[str, str] | None = None, data_dir: str | Path | None = None,
                 heap: str = "512m") -> None:
        super().__init__(data_dir=data_dir, heap=heap)
        self.ssl_port: int | None = None  # the mutual-TLS-only listener
        self.admin_password = secrets.token_urlsafe(18)
        self.users = {"admin": self.admin_password, **(users or {})}
        self.tls: TlsFiles | None = None

    @property
    def ssl_bootstrap(self) -> str:
        """The mutual-TLS listener (``SSL``, client certificate required): the principal is
        the certificate's subject, ``User:CN=streamdrift-client``."""
        return f"127.0.0.1:{self.ssl_port}"

    @staticmethod
    def scram_arg(user: str, password: str) -> str:
        return f"{MECHANISM}=[name={user},password={password}]"

    def client_config(self, user: str = "admin", password: str | None = None) -> dict:
        """librdkafka settings for ``user`` (its own password unless one is given)."""
        assert self.tls is not None, "start() first"
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_SSL",
                "sasl.mechanism": MECHANISM, "sasl.username": user,
                "sasl.password": self.users[user] if password is None else password,
                "ssl.ca.location": str(self.tls.ca)}

    @property
    def admin_config(self) -> dict:
        return self.client_config("admin")

    # -- what differs from the plain broker (monitor.dev.kafka.DevKafka) ---------------------
    auto_create_topics = False

    def _prepare(self) -> None:
        assert self.data_dir is not None
        self.tls = make_pki(self.data_dir / "tls", secrets.token_urlsafe(12))
        self.ssl_port = self.ssl_port or free_port()

    def _listener_properties(self, controller: int) -> list[str]:
        assert self.tls is not None
        jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="admin" password="{self.admin_password}";')
        return [
            f"listeners=SASL_SSL://127.0.0.1:{self.port},SSL://127.0.0.1:{self.ssl_port},"
            f"CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{self.port},"
            f"SSL://127.0.0.1:{self.ssl_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_SSL",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL",
            "listener.name.ssl.ssl.client.auth=required",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.tls.broker_keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.tls.ca}",
            "ssl.client.auth=requested",
            f"authorizer.class.name={AUTHORIZER}",
            "super.users=User:admin;User:ANONYMOUS",
            "allow.everyone.if.no.acl.found=false",
        ]

    def _format_args(self) -> list[str]:
        """The users, created at format time (no plaintext listener is needed to add them)."""
        return [a for u, pw in self.users.items() for a in ("--add-scram", self.scram_arg(u, pw))]

    def _admin_config(self) -> dict:
        return self.admin_config

    def _hide(self, text: str) -> str:
        return _hide(text, self.users.values())

    def start(self, timeout_s: float = 90.0) -> SecureKafka:
        super().start(timeout_s)
        return self

    # -- ACLs ------------------------------------------------------------------------------
    def allow(self, user: str, grants: list[tuple[str, str, str, str]],
              timeout_s: float = 15.0) -> None:
        """Add ALLOW ACLs for ``user``: each grant is ``(resource_type, name, pattern,
        operation)``, e.g. ``("topic", "events", "literal", "read")``."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self.admin_config)
        bindings = [acl_binding(user, *g) for g in grants]
        for f in admin.create_acls(bindings, request_timeout=timeout_s).values():
            f.result()
        # the authorizer applies them from the metadata log a moment after the answer (under
        # load, long enough for a check right after to see none): wait until it lists them
        from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType,
                                           ResourcePatternType, ResourceType)

        def key(b: Any) -> tuple:
            return (b.restype, b.name, b.resource_pattern_type, b.principal, b.operation)

        flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{user}",
                               None, AclOperation.ANY, AclPermissionType.ANY)
        want = {key(b) for b in bindings}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            have = {key(b) for b in admin.describe_acls(flt, request_timeout=timeout_s).result()}
            if want <= have:
                return
            time.sleep(0.1)
        raise KafkaUnavailable(f"the ACLs granted to {user} did not take effect in "
                               f"{timeout_s:.0f}s")

    def deny(self, user: str, grants: list[tuple[str, str, str, str]],
             timeout_s: float = 15.0) -> None:
        """Remove the given ALLOW ACLs of ``user`` (the opposite of :meth:`allow`)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self.admin_config)
        filters = [acl_binding(user, *g, as_filter=True) for g in grants]
        for f in admin.delete_acls(filters, request_timeout=timeout_s).values():
            f.result()


def acl_binding(user: str, resource_type: str, name: str, pattern: str, operation: str,
                as_filter: bool = False):
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    cls = AclBindingFilter if as_filter else AclBinding
    return cls(ResourceType[resource_type.upper()], name,
               ResourcePatternType[pattern.upper()], f"User:{user}", "*",
               AclOperation[operation.upper()], AclPermissionType.ALLOW)


def _hide(text: str, values) -> str:
    for v in values:
        text = text.replace(v, "***")
    return text


def main(argv: list[str] | None = None) -> int:
    """``streamdrift dev-kafka --secure``: the secured broker in the foreground. Prints a
    ``kafka:`` section for monitor.yaml (the password and key passphrase in files under the
    broker's folder) and grants the user every ACL a monitor named ``--monitor`` needs."""
    import argparse
    import signal
    import sys

    from monitor.config import from_dict

    p = argparse.ArgumentParser(prog="streamdrift dev-kafka --secure")
    p.add_argument("--user", default="streamdrift", help="the SCRAM user the monitor uses")
    p.add_argument("--monitor", default="loan-default",
                   help="grant the ACLs of a monitor with this name (default loan-default)")
    p.add_argument("--topic", default="loan-events", help="the monitored topic (created)")
    args = p.parse_args(argv)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # for sigwait
    k = SecureKafka(users={args.user: secrets.token_urlsafe(16)})
    k.start()
    assert k.tls is not None and k.data_dir is not None
    sdir = k.data_dir / "secrets"
    sdir.mkdir(mode=0o700, exist_ok=True)
    (sdir / "kafka-password").write_text(k.users[args.user] + "\n")
    (sdir / "key-password").write_text(k.tls.client_key_password + "\n")
    kafka = {"bootstrap": k.bootstrap, "security_protocol": "SASL_SSL",
             "sasl": {"mechanism": MECHANISM, "username": args.user,
                      "password_file": str(sdir / "kafka-password")},
             "tls": {"ca_file": str(k.tls.ca)}}
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(k.admin_config)
    for f in admin.create_topics([NewTopic(args.topic, 4, 1)]).values():
        f.result()
    cfg = from_dict({"monitor": args.monitor, "kafka": kafka, "stream": {"topic": args.topic},
                     "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
                     "reference": {"profile": "unused"}}, env={})
    from monitor.access import needs
    from monitor.topics import wanted_topics

    grants = {(n.kind, n.name, n.pattern, n.operation.lower()) for n in needs(cfg)}
    grants |= {("topic", t.name, "literal", op) for t in wanted_topics(cfg)
               for op in ("create", "describe_configs")}
    k.allow(args.user, sorted(grants))
    import yaml

    print(f"Kafka {k.bootstrap} (SASL_SSL, SCRAM-SHA-512, ACLs) ready in {k.started_in_s:.1f}s;"
          f" topic {args.topic!r} created, {args.user!r} granted what monitor "
          f"{args.monitor!r} needs. For monitor.yaml:\n", flush=True)
    print(yaml.safe_dump({"kafka": kafka}, sort_keys=False), flush=True)
    print("Ctrl-C stops it (and deletes its folder).", file=sys.stderr, flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        k.stop()
    return 0
