"""Stage 1 in two processes under one worker (``run --source-processes 2``), real broker.

Both children join the consumer group before the first event, share the partitions, and
one of them is killed with SIGKILL while events flow: the worker restarts it, its
partitions' state comes back from the state topic, and every window's report equals the
one-process result (exact counts, the same merged sketch bytes as a one-process replay).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from monitor.dev.synthetic import Scenario
from monitor.replay import replay
from monitor.dev.kafka import stop_process
from tests.e2e_harness import (ROOT, ReportReader, build_reference, config_dict, create_topic,
                               expected_digests, expected_window_counts, produce, write_config)

pytestmark = [pytest.mark.kafka]

N_EVENTS, RATE = 48_000, 4000  # 12 s of event time: 4 windows of 3 s, 12,000 events each


def _wait_log(log, pattern: str, proc, timeout_s: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.findall(pattern, log.read_text())
        if found:
            return found
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"{pattern!r} not in the log after {timeout_s} s:\n"
                         f"{log.read_text()[-3000:]}")


def test_two_source_processes_count_every_event_once_through_a_child_kill(kafka_bootstrap,
                                                                         tmp_path):
    topic = create_topic(kafka_bootstrap, 4)
    d = config_dict(tmp_path, kafka_bootstrap, topic)
    cfg, profile = build_reference(tmp_path, d, n=20_000)
    log = tmp_path / "monitor.log"
    mon = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "-c", str(write_config(tmp_path, d)),
         "--source-processes", "2", "--log-level", "info"], cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=open(log, "ab"),
        stderr=subprocess.STDOUT)
    reader = ReportReader(kafka_bootstrap, cfg.topics.reports)
    try:
        # both children are group members before the first event
        _wait_log(log, r"source-0 .*assigned partitions \[\d", mon)
        _wait_log(log, r"source-1 .*assigned partitions \[\d", mon)
        pid = int(_wait_log(log, r"stage-1 process 0 started \(pid (\d+)\)", mon)[0])

        def kill_child(chunk: int) -> None:
            if chunk == 0:  # a quarter of the events out: kill while they flow (a pause
                time.sleep(1.0)  # past windows.idle_timeout would close windows by wall clock)
                os.kill(pid, signal.SIGKILL)

        produced = produce(kafka_bootstrap, topic,
                           Scenario(n_events=N_EVENTS, events_per_s=RATE, seed=7),
                           chunks=4, between_chunks=kill_child)
        end_ms = int(produced.cols["ts"].max()) + 1
        counts = expected_window_counts(produced)
        reports = reader.wait_for(len(counts), 240, before_ms=end_ms)
        assert mon.poll() is None, log.read_text()[-3000:]
        restarted = re.findall(r"stage-1 process 0 started \(pid (\d+)\)", log.read_text())
        assert len(restarted) >= 2 and int(restarted[-1]) != pid  # the worker restarted it
    finally:
        stop_process(mon, 60)
        reader.close()
    assert {s: r["events"] for s, r in reports.items()} == counts
    assert all(r["late_events"] == 0 and r["bad_events"] == 0 for r in reports.values())
    assert {s: r["sketch_digest"] for s, r in reports.items()} == \
        expected_digests(cfg, profile, produced)
    one_process = {r.window_start_ms: r.to_dict()
                   for r in replay(cfg, profile, produced.table())}
    for s, r in reports.items():
        assert (r["events"], r["sketch_digest"]) == \
            (one_process[s]["events"], one_process[s]["sketch_digest"])
