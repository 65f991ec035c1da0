"""100,000 hostile messages of every bad kind among 100,000 good events, against the real
broker, the monitor running as one child process: each is counted by its reason (in the
dead-letter topic and in the window reports, exactly), the good events are all counted, and
the process never restarts. The resident-memory growth is printed (bench/faults.py records it
as faults.malformed_rss_growth_mb; no wall-clock or memory assert here)."""

from __future__ import annotations

import pytest

from monitor.dev.hostile import BAD_KINDS
from monitor.dev.hostile_run import run_hostile

pytestmark = pytest.mark.kafka


def test_100k_hostile_messages_are_dead_lettered_by_reason_and_the_monitor_stays_up(
        kafka_bootstrap, tmp_path, capsys):
    run = run_hostile(kafka_bootstrap, tmp_path, n_good=100_000, n_bad=100_000)
    log = (tmp_path / "monitor.log").read_text()
    assert run.exit_code is None, f"the monitor exited ({run.exit_code}):\n{log[-3000:]}"
    assert len(run.pids) == 1 and "Traceback" not in log, log[-3000:]
    assert run.kinds == len(BAD_KINDS) >= 15
    assert sum(run.expected.values()) == 100_000
    assert run.dead_lettered == run.expected
    assert run.reported == run.expected
    assert run.reported_events == 100_000
    with capsys.disabled():
        print(f"\n[hostile] {run.kinds} kinds, RSS {run.rss_start_mb:.0f} -> "
              f"{run.rss_end_mb:.0f} MB (growth {run.rss_growth_mb:.1f} MB), {run.wall_s:.0f}s")
