"""``stage1.processes`` (config) runs stage 1 in that many processes; ``run
--source-processes N`` overrides it. Real broker, ``streamdrift run --stage source``.

With ``stage1: {processes: 2}`` the worker starts two stage-1 processes and the group gives
each of them partitions; the same config with ``--source-processes 1`` runs stage 1 in the
worker itself, which takes all four partitions and starts no child.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e_harness import ROOT, build_reference, config_dict, create_topic, write_config

pytestmark = [pytest.mark.kafka]


def _run_until(args: list[str], log: Path, patterns: list[str], timeout_s: float = 120) -> str:
    """Start the monitor, wait until every pattern is in its log, stop it; the log."""
    mon = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", *args,
                            "--stage", "source", "--log-level", "info"], cwd=ROOT,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"},
                           stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while not all(re.search(p, log.read_text()) for p in patterns):
            assert mon.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
    finally:
        mon.send_signal(signal.SIGTERM)
        try:
            mon.wait(60)
        except subprocess.TimeoutExpired:
            mon.kill()
    return log.read_text()


def test_stage1_processes_sets_the_processes_and_the_flag_overrides_it(kafka_bootstrap,
                                                                       tmp_path):
    topic = create_topic(kafka_bootstrap, 4)
    d = config_dict(tmp_path, kafka_bootstrap, topic)
    d["stage1"] = {"processes": 2}
    build_reference(tmp_path, d, n=5_000)
    path = str(write_config(tmp_path, d))

    two = _run_until(["-c", path], tmp_path / "two.log",
                     [r"source-0 .*assigned partitions \[\d", r"source-1 .*assigned partitions \[\d"])
    assert re.search(r"stage-1 process 1 started", two)

    one = _run_until(["-c", path, "--source-processes", "1"], tmp_path / "one.log",
                     [r"assigned partitions \[0, 1, 2, 3\]"])
    assert "stage-1 process" not in one and "source-1" not in one
