"""A local Prometheus Alertmanager, built from source, for tests and the demo.

:func:`ensure_binary` builds ``alertmanager`` once into the cache
(``$STREAMDRIFT_CACHE_DIR/alertmanager-<version>/``): the Go module proxy serves the source
(``go mod download``), the module dir is copied somewhere writable, a placeholder
``ui/app/dist/index.html`` stands in for the web UI bundle the published module lacks (the
UI is embedded with ``go:embed``; API v2 works without it), and ``go build ./cmd/alertmanager``
runs there. Needs Go on PATH (1.21+; an older one than go.mod asks for fetches the right
toolchain); ``python -m monitor.dev.alertmanager`` builds it.

:class:`DevAlertmanager` runs it on 127.0.0.1 only: the web/API port is a free loopback port,
clustering (gossip on ``0.0.0.0:9094`` by default) is switched off, and ``--storage.path``
keeps silences and the notification log across a restart (alerts themselves live in memory:
senders re-send them, see :mod:`monitor.sinks.alertmanager`).

>>> binary_path().name
'alertmanager'
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from monitor.dev.kafka import _die_with_parent, free_port
from monitor.errors import StreamdriftError

VERSION = "v0.35.0"
MODULE = "github.com/prometheus/alertmanager"
PLACEHOLDER_UI = ("<!doctype html><title>Alertmanager</title>"
                  "<p>Built without the web UI bundle; the API is at /api/v2/.</p>\n")


class AlertmanagerUnavailable(StreamdriftError):
    """Alertmanager could not be built or did not start."""


def cache_root() -> Path:
    root = os.environ.get("STREAMDRIFT_CACHE_DIR") or Path.home() / ".cache" / "streamdrift"
    return Path(root) / f"alertmanager-{VERSION.lstrip('v')}"


def binary_path() -> Path:
    return cache_root() / "alertmanager"


def _go(args: list[str], cwd: Path | None = None) -> str:
    go = shutil.which("go")
    if go is None:
        raise AlertmanagerUnavailable("Go is not on PATH: install Go (1.22+) to build "
                                      "Alertmanager, or put a built binary at "
                                      f"{binary_path()}")
    # GOTOOLCHAIN stays the user's (default auto: an older Go fetches the toolchain that
    # Alertmanager's go.mod asks for through the same proxy)
    env = {**os.environ, "CGO_ENABLED": "0",
           "GOFLAGS": (os.environ.get("GOFLAGS", "") + " -modcacherw").strip()}
    p = subprocess.run([go, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise AlertmanagerUnavailable(f"`go {' '.join(args)}` failed:\n"
                                      + (p.stdout + p.stderr)[-4000:])
    return p.stdout


def ensure_binary(quiet: bool = True) -> Path:
    """The Alertmanager binary, built into the cache on first use (a lock keeps parallel
    callers from building twice)."""
    target = binary_path()
    if target.exists():
        return target
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        if not quiet:
            print(f"building Alertmanager {VERSION} from source into {root} "
                  "(once; a few minutes)", file=sys.stderr)
        info = json.loads(_go(["mod", "download", "-json", f"{MODULE}@{VERSION}"]))
        src = root / "src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(info["Dir"], src)
        for d, _, files in os.walk(src):  # the module cache is read-only
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        ui = src / "ui" / "app" / "dist"
        ui.mkdir(parents=True, exist_ok=True)
        (ui / "index.html").write_text(PLACEHOLDER_UI)
        partial = root / "alertmanager.partial"
        _go(["build", "-o", str(partial), "./cmd/alertmanager"], cwd=src)
        partial.rename(target)
        shutil.rmtree(src, ignore_errors=True)
    return target


class DevAlertmanager:
    """``alertmanager`` on 127.0.0.1 with the given YAML config; restartable on the same port
    and storage. Use as a context manager or call start() / stop()."""

    def __init__(self, config_yaml: str, storage: Path | None = None,
                 port: int | None = None) -> None:
        self.config_yaml = config_yaml
        self._tmp: tempfile.TemporaryDirectory | None = None
        if storage is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="am-")
            storage = Path(self._tmp.name)
        self.storage = Path(storage)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"DevAlertmanager(url={self.url!r}, storage={str(self.storage)!r})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> DevAlertmanager:
        binary = ensure_binary()
        self.storage.mkdir(parents=True, exist_ok=True)
        cfg = self.storage / "alertmanager.yml"
        cfg.write_text(self.config_yaml)
        self.log = self.storage / "alertmanager.log"
        self.proc = subprocess.Popen(
            [str(binary), f"--config.file={cfg}", f"--storage.path={self.storage / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             "--log.level=info"],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AlertmanagerUnavailable(f"alertmanager exited ({self.proc.returncode}):\n"
                                              + self.log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise AlertmanagerUnavailable(f"alertmanager not ready within {timeout_s}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def __enter__(self) -> DevAlertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


if __name__ == "__main__":
    print(ensure_binary(quiet=False))
