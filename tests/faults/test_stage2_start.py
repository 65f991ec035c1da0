"""Stage 2's start survives a broker that is down while its Faust worker bootstraps.

aiokafka tries its bootstrap hosts once and Faust's worker ended the process on that error
(CI: the broker went down while stage 2 was still starting). Now the start is retried with
backoff under the supervisor; the process ends (exit 70) only after the give-up.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from monitor.supervise import EXIT_GAVE_UP
from tests.e2e_harness import ROOT
from monitor.dev.workload import Feed
from tests.faults.harness import (
    AssignedReportReader,
    Monitor,
    assert_exact,
    closed_windows,
    end_ms,
    judge,
    scenario,
    setup,
)

FAILED_START = "stage aggregate failed"


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_stage2_starts_once_a_broker_that_was_down_at_its_bootstrap_is_back(tmp_path):
    from monitor.dev.kafka import DevKafka

    broker = DevKafka(data_dir=tmp_path / "kafka", heap="384m").start()
    mon = None
    try:
        s = setup(tmp_path, broker.bootstrap, idle_timeout=600_000)
        feed = Feed(broker.bootstrap, s.topic, scenario(5, seed=15), garbage_every=0)
        feed.send(feed.n)
        mon = Monitor(s, tmp_path / "monitor.log")
        # the preflight is done and stage 2 is being built: take the broker away (SIGKILL)
        # before Faust's bootstrap, and keep it away for a few failed starts
        deadline = time.monotonic() + 120
        while "status page at" not in mon.text():
            assert mon.alive() and time.monotonic() < deadline, mon.text()[-3000:]
            time.sleep(0.02)
        broker.stop(kill=True)
        mon.wait_log(FAILED_START, 60)  # a bootstrap failed, and the process lives on
        time.sleep(4)
        assert mon.alive(), mon.text()[-3000:]
        assert "[^Worker]: Ready" not in mon.text()
        broker.start()
        mon.wait_log("[^Worker]: Ready", 120)
        produced = feed.produced()
        reader = AssignedReportReader(broker.bootstrap, s.cfg.topics.reports)
        try:
            reader.wait_for(closed_windows(produced), 180, procs=[mon],
                            before_ms=end_ms(produced))
            time.sleep(1)
            reader.poll(1)
        finally:
            reader.close()
        verdict = judge(s, produced, reader, end_ms(produced))
        assert verdict.windows_expected == closed_windows(produced) == 4
        assert_exact(verdict)
        assert mon.text().count(FAILED_START) >= 2
    finally:
        if mon is not None:
            mon.stop()
        broker.stop()


@pytest.mark.slow
def test_a_start_that_keeps_failing_ends_the_process_after_the_give_up():
    """Nothing listens on the broker's port: every start fails, the supervisor retries with
    backoff, and after its give-up the process exits with 70 (here 2 retries, 0.05 s)."""
    script = textwrap.dedent("""
        import faust, logging, threading
        from monitor.stage2.worker import FaustStage
        from monitor.supervise import Health, Supervisor
        logging.basicConfig(level=logging.INFO)
        def make_app():
            app = faust.App("start-give-up", broker="kafka://127.0.0.1:1", web_enabled=False)
            app.topic("t")
            return app
        stage = FaustStage(make_app, "warning")
        Supervisor("aggregate", lambda: stage, Health(), backoff_s=0.05, max_backoff_s=0.05,
                   max_failures=2, window_s=60).run(threading.Event())
        print("returned", stage.exit_code)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == EXIT_GAVE_UP, out.stderr[-3000:]
    assert out.stderr.count(FAILED_START) == 3
    assert "Unable to bootstrap" in out.stderr and "returned" not in out.stdout
