"""A local Apache Kafka broker for tests, benchmarks and the demo.

One combined broker+controller (KRaft) on 127.0.0.1 on free ports. Its jars are resolved from
Maven Central by Maven (a small pom written into the cache folder, then
``mvn dependency:copy-dependencies``) and cached, so a second start only launches the JVM.

The JVM is started with a parent-death signal (Linux ``PR_SET_PDEATHSIG``): if the Python
process that started it dies, even by ``kill -9``, the kernel kills the broker too, so no
orphan JVM survives a crashed or interrupted test run. :meth:`DevKafka.stop` stops it cleanly.

>>> DevKafka.cluster_id_for("x") == DevKafka.cluster_id_for("x")
True
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from monitor.errors import StreamdriftError

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.streamdrift</groupId>
  <artifactId>dev-kafka</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="{log}"><PatternLayout pattern="[%d] %p %m (%c)%n"/></File>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="org.apache.kafka" level="WARN"/>
    <Logger name="kafka" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
  </Loggers>
</Configuration>
"""


class KafkaUnavailable(StreamdriftError):
    """The local broker could not be fetched or started; the message says which step failed."""


def cache_dir() -> Path:
    """Where the jars are cached: ``$STREAMDRIFT_CACHE_DIR`` or ``~/.cache/streamdrift``."""
    root = os.environ.get("STREAMDRIFT_CACHE_DIR") or Path.home() / ".cache" / "streamdrift"
    return Path(root) / f"kafka-{KAFKA_VERSION}"


def ensure_jars(quiet: bool = True) -> Path:
    """Resolve the broker's jars into the cache (once) and return the folder holding them."""
    root = cache_dir()
    libs = root / "libs"
    done = root / ".complete"
    if done.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailable("Maven (mvn) is not on PATH: install Maven to fetch the Kafka jars")
    root.mkdir(parents=True, exist_ok=True)
    pom = root / "pom.xml"
    pom.write_text(_POM.format(kafka=KAFKA_VERSION, slf4j=SLF4J_VERSION, log4j=LOG4J_VERSION))
    tmp = root / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [mvn, "-B", "-f", str(pom), "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"]
    if quiet:
        cmd.insert(1, "-q")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KafkaUnavailable(
            f"mvn could not resolve org.apache.kafka:kafka_2.13:{KAFKA_VERSION}:\n"
            + (proc.stdout + proc.stderr)[-4000:]
        )
    jars = sorted(p.name for p in tmp.glob("*.jar"))
    if not any(j.startswith(f"kafka_2.13-{KAFKA_VERSION}") for j in jars):
        raise KafkaUnavailable(f"Maven finished but kafka_2.13-{KAFKA_VERSION}.jar is missing: {jars}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    done.write_text("\n".join(jars) + "\n")
    return libs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setsid()


def stop_process(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL when ``proc`` has not ended within ``timeout_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class DevKafka:
    """One local KRaft broker. Use as a context manager or call start() / stop().

    ``DevKafka().start().bootstrap`` is ``"127.0.0.1:<port>"``.
    """

    def __init__(self, data_dir: str | Path | None = None, port: int | None = None,
                 heap: str = "768m", log_to: Path | None = None,
                 cluster_id: str | None = None, controller_port: int | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir else None
        self.cluster_id = cluster_id  # None: a fresh random one at the first format
        self.controller_port = controller_port  # kept across restarts of the same data_dir
        self.port = port
        self.heap = heap
        self.log_to = log_to
        self.proc: subprocess.Popen | None = None
        self._own_dir = False
        self.started_in_s: float | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def cluster_id_for(seed: str) -> str:
        """A Kafka cluster id (base64url of 16 bytes, unpadded), derived from ``seed``.

        One id in 64 begins with ``-``: :meth:`start` passes it as ``--cluster-id=<id>``, so
        the storage tool never reads it as an option."""
        raw = hashlib.sha256(seed.encode()).digest()[:16]
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise KafkaUnavailable("java is not on PATH: install a JDK (17 or newer)")
        return [java, "-Xms128m", f"-Xmx{self.heap}", "-XX:+UseG1GC",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.xml'}",
                "-Djava.awt.headless=true", "-cp", f"{libs}/*", main, *args]

    # -- what a subclass (monitor.dev.secure_kafka.SecureKafka) changes ---------------------
    #: the broker creates a topic a client names (the secured one does not)
    auto_create_topics = True

    def _prepare(self) -> None:
        """Runs before the ports and config are written (the secured broker makes its PKI)."""

    def _listener_properties(self, controller: int) -> list[str]:
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ]

    def _format_args(self) -> list[str]:
        """Extra arguments of ``kafka-storage format`` (the secured broker's SCRAM users)."""
        return []

    def _admin_config(self) -> dict:
        return {"bootstrap.servers": self.bootstrap}

    def _hide(self, text: str) -> str:
        """``text`` with every secret of this broker masked (the plain one has none)."""
        return text

    # -- start -------------------------------------------------------------------------------
    def _properties(self, controller: int) -> list[str]:
        assert self.data_dir is not None
        return [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}",
            *self._listener_properties(controller),
            f"log.dirs={self.data_dir / 'logs'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "group.min.session.timeout.ms=1000",
            f"auto.create.topics.enable={str(self.auto_create_topics).lower()}",
            "log.flush.interval.messages=9223372036854775807",
        ]

    def start(self, timeout_s: float = 90.0) -> "DevKafka":
        t0 = time.monotonic()
        libs = ensure_jars()
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="streamdrift-kafka-"))
            self._own_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        self.port = self.port or free_port()
        controller = self.controller_port = self.controller_port or free_port()
        log = self.log_to or self.data_dir / "broker.log"
        (self.data_dir / "log4j2.xml").write_text(_LOG4J2.format(log=log))
        props = self.data_dir / "server.properties"
        props.write_text("\n".join(self._properties(controller)) + "\n")
        props.chmod(0o600)  # the secured broker's holds the admin password
        meta = self.data_dir / "logs" / "meta.properties"
        if not meta.exists():
            cid = self.cluster_id or self.cluster_id_for(str(uuid.uuid4()))
            fmt = subprocess.run(
                self._java(libs, "kafka.tools.StorageTool", "format", "--standalone",
                           f"--cluster-id={cid}", "-c", str(props), *self._format_args()),
                capture_output=True, text=True)
            if fmt.returncode != 0:
                raise KafkaUnavailable("kafka-storage format failed:\n"
                                       + self._hide(fmt.stdout + fmt.stderr))
        out = open(self.data_dir / "broker.out", "ab")
        self.proc = subprocess.Popen(self._java(libs, "kafka.Kafka", str(props)),
                                     stdout=out, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        out.close()
        try:
            self._wait_ready(timeout_s - (time.monotonic() - t0))
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - t0
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        from confluent_kafka.admin import AdminClient

        assert self.proc is not None and self.data_dir is not None
        deadline = time.monotonic() + timeout_s
        admin = AdminClient({**self._admin_config(), "log_level": 0})
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.data_dir / "broker.out").read_text()[-3000:]
                raise KafkaUnavailable(f"the broker exited with {self.proc.returncode}:\n"
                                       + self._hide(tail))
            try:
                md = admin.list_topics(timeout=1.0)
                if md.brokers:
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.2)
        raise KafkaUnavailable(f"the broker did not answer metadata within {timeout_s:.0f}s "
                               f"(log: {self.data_dir / 'broker.out'})")

    def stop(self, timeout_s: float = 20.0, kill: bool = False) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL after ``timeout_s``; removes a temp dir.
        ``kill``: SIGKILL at once (a crash). A broker given its ``data_dir`` can be started
        again on the same ports with its data."""
        if self.proc is not None:
            if kill:
                self.proc.kill()
            stop_process(self.proc, timeout_s)
        self.proc = None
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "DevKafka":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``streamdrift dev-kafka``: run a local broker in the foreground until Ctrl-C."""
    import argparse

    p = argparse.ArgumentParser(prog="streamdrift dev-kafka",
                                description="Run a local Apache Kafka broker on 127.0.0.1.")
    p.add_argument("--port", type=int, default=None, help="listener port (default: a free one)")
    p.add_argument("--data-dir", default=None, help="keep data here (default: a temp dir)")
    args = p.parse_args(argv)
    k = DevKafka(data_dir=args.data_dir, port=args.port)
    print(f"fetching Kafka {KAFKA_VERSION} jars into {cache_dir()} (cached after the first run)",
          file=sys.stderr)
    k.start()
    print(f"Kafka {KAFKA_VERSION} ready in {k.started_in_s:.1f}s at {k.bootstrap}  (Ctrl-C stops)",
          flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        k.stop()
    return 0
