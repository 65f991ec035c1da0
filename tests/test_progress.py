"""replay and profile build show a progress bar (events/s, time left) on a terminal, and
nothing of it when their output goes to a pipe or a file."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitor.dev.synthetic import Scenario, generate
from tests.e2e_harness import ROOT, build_reference, config_dict, write_config


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("progress")
    d = config_dict(tmp, "127.0.0.1:1", "t")
    build_reference(tmp, d, n=20_000)
    cols = generate(Scenario(n_events=60_000, events_per_s=10_000, seed=3))
    pq.write_table(pa.table({k: v for k, v in cols.items() if not k.startswith("_")}),
                   tmp / "events.parquet")
    return tmp, write_config(tmp, d)


def _run(argv, terminal: bool) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "STREAMDRIFT_PROGRESS"}
    cmd = [sys.executable, "-m", "monitor.cli", *argv]
    if not terminal:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=300)
        return r.returncode, (r.stdout + r.stderr).decode()
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(60), out.decode(errors="replace")


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_replay_progress_only_on_a_terminal(files, terminal):
    tmp, cfg = files
    rc, out = _run(["replay", "-c", str(cfg), "--input", str(tmp / "events.parquet"),
                    "--reports", str(tmp / f"r-{terminal}.jsonl")], terminal)
    assert rc == 0, out
    assert "window reports written" in out
    shown = ["replay: decoding", "replay: windowing", "events/s", "60.0k/60.0k"]
    if terminal:
        assert all(s in out for s in shown), out
    else:
        assert not any(s in out for s in shown), out


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_profile_build_progress_only_on_a_terminal(files, terminal):
    tmp, cfg = files
    rc, out = _run(["profile", "build", "-c", str(cfg), "--input", str(tmp / "events.parquet"),
                    "-o", str(tmp / f"p-{terminal}.profile")], terminal)
    assert rc == 0, out
    shown = ["reading events.parquet", "events/s", "profile: columns"]
    if terminal:
        assert all(s in out for s in shown), out
    else:
        assert not any(s in out for s in shown), out
