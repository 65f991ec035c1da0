"""``streamdrift check -c monitor.yaml``: will this config work against this cluster?

Run before a deployment, with the monitor's own credentials. It checks, in order: the
client settings and secrets (files exist, variables set, the key opens); the connection
(address, TLS trust and host name, SASL credentials); every ACL each stage needs (topics
read and written, consumer groups, Faust's changelogs, CREATE for topics still missing);
the settings of the monitor's existing topics against their policies
(:mod:`monitor.topics`); the schema registry (credentials, CA) when the stream is Avro. It
prints one line per finding and exits 0 when nothing is wrong, 1 otherwise. With
``--create-topics`` (run it with an admin's config) it creates the missing topics with their
policies first.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

from monitor.config import MonitorConfig, kafka_client_config, registry_options
from monitor.errors import StreamdriftError


def check(cfg: MonitorConfig, say: Callable[[str], None] = print, stage: str = "all",
          create_topics: bool = False) -> int:
    """Print the findings with ``say``; return the number of problems."""
    from monitor.access import AccessError, connect, missing_access, principal
    from monitor.topics import ensure_topics, policy_drift

    problems = 0

    def bad(line: str) -> None:
        nonlocal problems
        problems += 1
        say(f"PROBLEM  {line}")

    k = cfg.kafka
    try:
        client = kafka_client_config(cfg)
        if k.security_protocol != "PLAINTEXT":
            from monitor.config import faust_broker_settings

            faust_broker_settings(cfg)  # stage 2's TLS context: the key must open there too
        admin = connect(cfg, client)
    except (AccessError, StreamdriftError) as e:
        for line in str(e).splitlines():
            bad(line)
        return problems
    say(f"ok       connected to {k.bootstrap} as {principal(cfg)} ({k.security_protocol}"
        + (f", {k.sasl.mechanism}" if k.sasl else "") + ")")
    if create_topics:
        try:
            created = ensure_topics(cfg, client)
            say(f"ok       created {len(created)} topic(s) with their policies"
                + (f": {', '.join(created)}" if created else ""))
        except StreamdriftError as e:
            bad(str(e))
    lines, to_create = missing_access(cfg, admin, stage)
    for line in lines:
        bad(line)
    for name in to_create:
        say(f"note     topic {name!r} does not exist yet: `streamdrift run` creates it "
            "with its policy (its READ/WRITE ACLs are checked once it exists)")
    if not lines:
        say(f"ok       every ACL stage {stage!r} needs on what exists is granted to "
            f"{principal(cfg)}")
    drift, unreadable = policy_drift(cfg, client)
    for line in drift:
        bad(f"policy drift: {line}")
    for line in unreadable:
        say(f"note     {line}")
    if cfg.stream.format == "avro" and cfg.stream.schema_registry_url:
        line = registry_problem(cfg)
        if line:
            bad(line)
        else:
            say("ok       the schema registry answered with these credentials")
    say("streamdrift check: " + ("all good" if not problems else f"{problems} problem(s)"))
    return problems


def registry_problem(cfg: MonitorConfig, timeout_s: float = 5.0) -> str | None:
    """One line if ``GET /subjects`` on the registry fails with the configured auth."""
    from monitor.stage1.schema_registry import SchemaRegistry

    try:
        opts = registry_options(cfg)
    except StreamdriftError as e:
        return str(e)
    reg = SchemaRegistry(cfg.stream.schema_registry_url or "", **opts)
    req = urllib.request.Request(f"{reg.url}/subjects", headers=reg.headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=reg.ssl_context) as r:
            json.loads(r.read())
        return None
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            return (f"stream.schema_registry: {reg.shown_url} refused the credentials "
                    f"(HTTP {e.code}): check username / password_env or token_env")
        return f"stream.schema_registry_url: {reg.shown_url} answered HTTP {e.code}"
    except urllib.error.URLError as e:
        reason = e.reason
        if "CERTIFICATE_VERIFY_FAILED" in str(reason):
            return (f"stream.schema_registry.ca_file: the registry's certificate at "
                    f"{reg.shown_url} is not trusted: {getattr(reason, 'verify_message', reason)}")
        return f"stream.schema_registry_url: cannot reach {reg.shown_url}: {reason}"
    except (OSError, ValueError) as e:
        return f"stream.schema_registry_url: {reg.shown_url}: {e}"
