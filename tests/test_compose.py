"""docker-compose.yml and the Dockerfile agree with the code, the example config and the README.

No Docker here: the files are parsed (PyYAML, a small Dockerfile reader) and every name that
crosses from one file to another is checked on the other side — listeners, ports, commands,
paths inside the image, the monitored topic, the secrets the example config names.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from pathlib import Path

import pytest
import yaml

from monitor import cli
from monitor import config as C
from monitor.config import build as config_build

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
EXAMPLE = ROOT / "examples" / "monitor.yaml"


# -- readers -----------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict:
    return compose()["services"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` against ``env``."""
    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        got = env.get(name, "")
        if op == ":-":
            return got or arg
        if op == ":?" and not got:
            raise LookupError(f"compose refuses to start: {name}: {arg}")
        return got
    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", sub, value)


def environment(svc: dict, env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment as a dict of strings (mapping or ``KEY=value`` list form)."""
    e = svc.get("environment") or {}
    if isinstance(e, list):
        e = dict(item.split("=", 1) for item in e)
    return {k: interpolate(str(v), env or {}) for k, v in e.items()}


def listeners(spec: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)} (an empty host stays empty)."""
    out = {}
    for item in spec.split(","):
        name, rest = item.strip().split("://", 1)
        host, port = rest.rsplit(":", 1)
        out[name] = (host, int(port))
    return out


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, cur = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        cur += line.rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1] + " "
            continue
        word, _, args = cur.strip().partition(" ")
        out.append((word.upper(), args.strip()))
        cur = ""
    return out


def image_files() -> dict[str, Path]:
    """Where each ``COPY`` puts its sources in the image: {absolute image path: repo path}
    (Docker's rules: a folder's contents go into the destination; a file goes into a
    destination that ends with ``/`` under its own name)."""
    workdir, out = "/", {}
    for word, args in dockerfile():
        if word == "WORKDIR":
            workdir = posixpath.join(workdir, args)
        elif word == "COPY":
            *srcs, dest = shlex.split(args)
            assert not any(s.startswith("--") for s in srcs), "COPY --from/--chown: extend me"
            into = dest.endswith("/") or len(srcs) > 1
            dest = posixpath.normpath(posixpath.join(workdir, dest))
            for s in srcs:
                src = ROOT / s
                out[posixpath.join(dest, src.name) if into and src.is_file() else dest] = src
    return out


def in_image(path: str) -> bool:
    """Whether ``path`` exists in the image because a COPY put it there."""
    for dest, src in image_files().items():
        if path == dest:
            return src.exists()
        if path.startswith(dest + "/") and src.is_dir():
            return (src / path[len(dest) + 1:]).exists()
    return False


def parse(command: list[str]):
    """The argparse namespace of ``streamdrift <command>``; fails the test on a bad command."""
    try:
        ns = cli.build_parser().parse_args(command)
    except SystemExit as e:  # argparse prints the reason to stderr
        pytest.fail(f"`streamdrift {' '.join(command)}` does not parse (exit {e.code})")
    assert getattr(ns, "func", None) is not None, f"{command}: not a runnable subcommand"
    return ns


def kafka_env() -> dict[str, str]:
    return environment(services()["kafka"])


def reachable_listeners() -> dict[str, tuple[str, int]]:
    """The kafka service's advertised listeners, by name."""
    return listeners(kafka_env()["KAFKA_ADVERTISED_LISTENERS"])


def bootstrap_in_network(bootstrap: str) -> None:
    """Every ``host:port`` of ``bootstrap`` is a listener kafka advertises under a name that
    other containers resolve (the service name or its ``hostname``), and not the controller."""
    k = services()["kafka"]
    names = {"kafka", k.get("hostname", "kafka")}
    adv = reachable_listeners()
    controller = set(kafka_env()["KAFKA_CONTROLLER_LISTENER_NAMES"].split(","))
    for hp in bootstrap.split(","):
        host, port = hp.rsplit(":", 1)
        hits = [n for n, (h, p) in adv.items() if (h, p) == (host, int(port))]
        assert hits, f"{hp} is not among kafka's advertised listeners {adv}"
        assert not set(hits) & controller, f"{hp} is the controller listener"
        assert host in names, f"{host} does not resolve inside the compose network"


# -- the services ------------------------------------------------------------------------

def test_services_exist():
    assert {"kafka", "monitor", "demo-producer"} <= set(services())


def test_kafka_is_a_kraft_combined_node():
    k = services()["kafka"]
    assert re.fullmatch(r"apache/kafka:4(\.\d+)*", k["image"]), k["image"]
    env = kafka_env()
    assert {"broker", "controller"} <= {r.strip() for r in env["KAFKA_PROCESS_ROLES"].split(",")}
    node_id = int(env["KAFKA_NODE_ID"])
    bound = listeners(env["KAFKA_LISTENERS"])
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    assert "CONTROLLER" in controller and "CONTROLLER" in bound
    protocols = dict(x.split(":") for x in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(bound) <= set(protocols), "every listener needs a security protocol"
    # the quorum is this node, on its controller port
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert f"{node_id}@kafka:{bound['CONTROLLER'][1]}" in voters or \
        f"{node_id}@{k.get('hostname')}:{bound['CONTROLLER'][1]}" in voters
    # every advertised listener is bound on the same port; the controller is not advertised
    for name, (_, port) in reachable_listeners().items():
        assert name in bound and bound[name][1] == port, name
        assert name not in controller
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in bound
    # a single broker: internal topics cannot ask for three replicas
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_kafka_port_published_for_the_host_is_the_localhost_listener():
    published_at = {c: h for _, h, c in published(services()["kafka"], {})}
    host_side = [(h, p) for h, p in reachable_listeners().values() if h in ("localhost",
                                                                           "127.0.0.1")]
    assert host_side, "no listener for clients on the host"
    for _, port in host_side:
        assert published_at.get(port) == port, f"localhost:{port} is advertised but not published"


@pytest.mark.parametrize("service", ["monitor", "demo-producer"])
def test_bootstrap_points_at_an_advertised_listener(service):
    env = environment(services()[service], {"SLACK_BOT_TOKEN": "xoxb-test"})
    bootstrap_in_network(env[C.BOOTSTRAP_ENV])


def test_the_monitored_topic_is_created_before_monitor_and_producer_start():
    """`streamdrift run` refuses a missing stream.topic; the producer's auto-creation would
    race it. A one-shot service creates it, and both wait for it to finish."""
    topic = C.load(EXAMPLE, env={}).stream.topic
    svcs = services()
    init = [name for name, s in svcs.items()
            if "kafka-topics.sh" in " ".join(map(str, s.get("command") or []))]
    assert init, "no service creates the monitored topic"
    name = init[0]
    cmd = [str(x) for x in svcs[name]["command"]]
    assert "--create" in cmd and cmd[cmd.index("--topic") + 1] == topic
    assert "--if-not-exists" in cmd  # a second `docker compose up` must not fail
    bootstrap_in_network(cmd[cmd.index("--bootstrap-server") + 1])
    assert svcs[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for svc in ("monitor", "demo-producer"):
        assert svcs[svc]["depends_on"][name]["condition"] == "service_completed_successfully"


def published(svc: dict, env: dict[str, str]) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of each published port, compose's short syntax
    (``[ip:]host:container``; no ip means every interface)."""
    out = []
    for p in svc.get("ports") or []:
        parts = interpolate(str(p), env).split(":")
        ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((ip, int(parts[-2]), int(parts[-1])))
    return out


@pytest.mark.parametrize("service", ["kafka", "monitor"])
def test_published_ports_listen_on_loopback_unless_the_user_says_otherwise(service):
    """Plaintext Kafka and /metrics must not be reachable from the network by default."""
    svc = services()[service]
    assert svc.get("ports"), f"{service} publishes nothing"
    for ip, _, _ in published(svc, {}):
        assert ip == "127.0.0.1", f"{service} publishes on {ip}"
    for ip, _, _ in published(svc, {"STREAMDRIFT_PUBLISH_HOST": "0.0.0.0"}):
        assert ip == "0.0.0.0"
    assert "STREAMDRIFT_PUBLISH_HOST" in COMPOSE.read_text().split("services:")[0]  # documented
    for name, other in services().items():
        for ip, _, _ in published(other, {}):
            assert ip == "127.0.0.1", f"{name} publishes on {ip}"


def test_monitor_publishes_the_configured_http_port():
    mon = services()["monitor"]
    cfg = C.load(EXAMPLE, env=environment(mon, {"SLACK_BOT_TOKEN": "xoxb-test"}))
    container_ports = {c for _, _, c in published(mon, {})}
    assert cfg.http.port in container_ports
    # 127.0.0.1 inside a container is unreachable through a published port
    assert cfg.http.host == "0.0.0.0"
    assert C.load(EXAMPLE, env={}).http.host == "127.0.0.1"  # the file itself stays local


def test_monitor_command_is_streamdrift_run_on_a_config_in_the_image():
    cmd = [str(x) for x in services()["monitor"]["command"]]
    ns = parse(cmd)
    assert ns.func is cli.cmd_run
    assert ns.config.startswith("/") and in_image(ns.config), ns.config


def test_demo_producer_command_parses_and_its_config_is_in_the_image():
    cmd = [str(x) for x in services()["demo-producer"]["command"]]
    ns = parse(cmd)
    assert ns.func is cli.cmd_synth and ns.live and ns.rate > 0
    assert in_image(ns.config), ns.config


def test_monitor_environment_supplies_the_secrets_the_example_names():
    cfg = C.load(EXAMPLE, env={})
    named = [s.env for s in (cfg.slack and cfg.slack.token, cfg.slack and cfg.slack.webhook_url)
             if s is not None and s.env]
    assert named == ["SLACK_BOT_TOKEN"]
    mon = services()["monitor"]
    # compose refuses to start without it (the monitor would exit on the missing token) ...
    with pytest.raises(LookupError, match="SLACK_BOT_TOKEN"):
        environment(mon, {})
    # ... and passes it through when it is set
    env = environment(mon, {"SLACK_BOT_TOKEN": "xoxb-test"})
    for name in named:
        assert env[name] == "xoxb-test"


# -- the image ---------------------------------------------------------------------------

def test_dockerfile_entrypoint_and_default_command():
    instr = dict(dockerfile())
    assert yaml.safe_load(instr["ENTRYPOINT"]) == ["streamdrift"]
    assert 'streamdrift = "monitor.cli:main"' in (ROOT / "pyproject.toml").read_text()
    cmd = yaml.safe_load(instr["CMD"])  # an exec-form JSON list
    assert cmd == [str(x) for x in services()["monitor"]["command"]]
    assert parse(cmd).func is cli.cmd_run


def test_image_runs_the_code_beside_its_schemas():
    """The wheel holds monitor/ and kernels/ only; config_build reads the JSON Schema at
    ``<package>/../schemas``, so the image must import monitor from /app, next to schemas/."""
    rel = config_build.SCHEMA_PATH.relative_to(ROOT)
    assert in_image(f"/app/{rel.as_posix()}")
    assert in_image("/app/monitor/config/build.py") and in_image("/app/kernels/__init__.py")
    env = {}
    for word, args in dockerfile():
        if word == "ENV":
            k, _, v = args.replace("=", " ", 1).partition(" ")
            env[k] = v.strip()
    assert "/app" in env.get("PYTHONPATH", "").split(":")


def test_image_has_the_reference_profile_the_example_names():
    """`streamdrift run` needs reference.profile at start; the image builds it."""
    cfg = C.load(EXAMPLE, env={})
    in_img = "/app/" + cfg.reference.profile.relative_to(ROOT).as_posix()
    runs = " ".join(args for word, args in dockerfile() if word == "RUN")
    m = re.search(r"streamdrift (profile build .*?)(?:&&|$)", runs)
    assert in_image(in_img) or m, f"{in_img} is neither copied nor built in the image"
    if m:
        ns = parse(shlex.split(m.group(1)))
        assert ns.func is cli.cmd_profile_build and ns.output == in_img
        assert in_image(ns.config)


def test_readme_mentions_docker_compose_up():
    assert "docker compose up" in (ROOT / "README.md").read_text()


# -- the example config under the compose environment -----------------------------------

def test_example_loads_with_the_compose_bootstrap_override():
    cfg = C.load(EXAMPLE, env={C.BOOTSTRAP_ENV: "kafka:19092"})
    assert cfg.kafka.bootstrap == "kafka:19092"
    assert C.kafka_client_config(cfg, {})["bootstrap.servers"] == "kafka:19092"
    assert C.load(EXAMPLE, env={}).kafka.bootstrap == "127.0.0.1:9092"


@pytest.mark.parametrize("env, host", [
    ({}, "127.0.0.1"),
    ({C.HTTP_HOST_ENV: "0.0.0.0"}, "0.0.0.0"),
    ({C.HTTP_HOST_ENV: ""}, "127.0.0.1"),  # empty means unset, like the bootstrap override
    ({C.HTTP_HOST_ENV: "::"}, "::"),
])
def test_http_host_override(env, host):
    base = {"monitor": "m", "kafka": {"bootstrap": "k:9092"}, "stream": {"topic": "t"},
            "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
            "reference": {"profile": "/r"}, "http": {"host": "127.0.0.1", "port": 9200}}
    cfg = C.from_dict(base, env=env)
    assert cfg.http.host == host and cfg.http.port == 9200  # the port is untouched
    no_http = {k: v for k, v in base.items() if k != "http"}
    assert C.from_dict(no_http, env=env).http.host == host
