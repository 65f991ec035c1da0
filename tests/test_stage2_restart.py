"""Stage 2 owns its state (issue 12), against the real broker and the Slack test server with
the real slack-sdk client: stage 2 is killed with SIGKILL while an alert fires, and restarted.

- on-call sees exactly one firing message and one resolve, in the same thread (the alert
  policy's state — firing keys, last notification, thread ids — survived the kill);
- a silence added with the CLI, from a config in another directory (another machine, as far
  as a local file is concerned), holds in stage 2 before and after the restart;
- the window reports equal those of a run without the kill (a replay of the same events).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from monitor.dev.synthetic import Fault, Scenario
from monitor.replay import replay
from tests.e2e_harness import (
    ROOT, START_MS, WINDOW_MS, MonitorProcess, ReportReader, build_reference, comparable,
    config_dict, create_topic, produce, write_config,
)
from tests.slack_server import SlackServer
from tests.test_e2e import _checks_close

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TOKEN = "xoxb-stage2-restart-test"
RATE = 2000                          # events per second of event time: 6,000 per window
PER_WINDOW = RATE * WINDOW_MS // 1000
N_WINDOWS = 9
FIRES, RESOLVES = 2, 6               # the fault covers windows 2..5
KILL_AFTER = 4                       # windows 0..3 are produced before the kill


def _window(i: int) -> int:
    return START_MS + i * WINDOW_MS


def _posted(server: SlackServer, feature: str, kind: str | None = None) -> list:
    """Messages whose alert (metadata) concerns ``feature``; of ``kind`` when given."""
    out = []
    for m in server.messages:
        p = (m.metadata or {}).get("event_payload") or {}
        keys = str(p.get("keys", "")).split(",")
        if any(k.endswith("/" + feature) for k in keys) and kind in (None, p.get("kind")):
            out.append(m)
    return out


def test_kill_9_of_stage_2_while_an_alert_fires(kafka_bootstrap, tmp_path, monkeypatch):
    server = SlackServer(token=TOKEN).start()
    monkeypatch.setenv("SD_TEST_SLACK_TOKEN", TOKEN)
    procs: list[MonitorProcess] = []
    try:
        topic = create_topic(kafka_bootstrap, 2)
        # no idle heartbeats: while the test waits for Slack, the wall clock must not close
        # the windows whose events come after the kill
        d = config_dict(tmp_path, kafka_bootstrap, topic, idle_timeout=3_600_000)
        d["slack"] = {"channel": "#ml-oncall", "token_env": "SD_TEST_SLACK_TOKEN",
                      "base_url": server.base_url}
        d["triggers"] = {"enabled": False}
        cfg, profile = build_reference(tmp_path, d)
        path = write_config(tmp_path, d)
        loud, quiet = Scenario().features[0], Scenario().features[1]
        # the CLI, run from another directory with its own copy of the config
        other = tmp_path / "other-machine"
        other.mkdir()
        shutil.copy(path, other / "monitor.yaml")
        out = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "silence", "add", "-c",
             str(other / "monitor.yaml"), "--feature", quiet, "--reason", "known backfill"],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert not list(other.glob("*silences*")) and not list(tmp_path.glob("*silences*"))

        scen = Scenario(n_events=N_WINDOWS * PER_WINDOW, events_per_s=RATE, seed=11,
                        faults=(Fault(loud, "null", _window(FIRES), _window(RESOLVES)),
                                Fault(quiet, "null", _window(FIRES), _window(RESOLVES))))
        log = tmp_path / "stage2.log"
        procs += [MonitorProcess(path, tmp_path / "source.log", stage="source"),
                  MonitorProcess(path, tmp_path / "sinks.log", stage="sinks"),
                  MonitorProcess(path, log, stage="aggregate")]
        reader = ReportReader(kafka_bootstrap, cfg.topics.reports)
        cut = KILL_AFTER * PER_WINDOW

        def kill_while_firing(chunk: int) -> None:
            if chunk != 0:
                return
            deadline = time.monotonic() + 240
            while not _posted(server, loud, "firing"):  # the page went out
                assert time.monotonic() < deadline, "no firing message reached Slack"
                for p in procs:
                    assert p.alive(), p.log.read_text()[-3000:]
                time.sleep(0.2)
            procs[2].kill9()
            procs[2] = MonitorProcess(path, log, stage="aggregate")

        produced = produce(kafka_bootstrap, topic, scen, partitions=2, cuts=[cut],
                           between_chunks=kill_while_firing)
        end = _window(N_WINDOWS - 1)
        reader.wait_for(N_WINDOWS - 1, 300, procs=procs, before_ms=end)
        deadline = time.monotonic() + 120
        while not _posted(server, loud, "resolved") and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # room for a duplicate to show up
        reader.poll(2)
    finally:
        for p in procs:
            p.stop()
        server.stop()
    assert log.read_text().count("stage 2 state restored") >= 2  # it really restarted

    firing = _posted(server, loud, "firing")
    assert len(firing) == 1 and firing[0].thread_ts is None, [m.text for m in firing]
    resolves = _posted(server, loud, "resolved")
    assert len(resolves) == 1 and resolves[0].thread_ts == firing[0].ts
    assert _posted(server, quiet) == [], "the silence did not hold"

    want = {r.window_start_ms: r.to_dict() for r in replay(cfg, profile, _as_sent(produced))}
    got = {w: c for w, c in reader.copies.items() if w < end}
    assert sorted(got) == sorted(w for w in want if w < end)
    for w, copies in got.items():
        for c in copies[1:]:
            assert comparable(c) == comparable(copies[0]), f"window {w} differs between copies"
        a, b = comparable(copies[0]), comparable(want[w])
        for k in ("events", "bad_events", "sketch_digest", "profile_id"):
            assert a[k] == b[k], (w, k)
        _checks_close(a, b)


def _as_sent(produced):
    """The produced table with the "null" faults applied, as the JSON messages carried them."""
    import pyarrow as pa

    t = produced.table()
    for k, mask in produced.cols.items():
        if k.startswith("_null:"):
            name = k.split(":", 1)[1]
            i = t.column_names.index(name)
            t = t.set_column(i, name, pa.array(t.column(name).to_numpy(), mask=mask))
    return t

