"""A fault scenario or test that fails leaves no monitor process running (#11)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.harness import Monitor, run_scenario, setup


@pytest.mark.kafka
def test_a_failing_scenario_kills_the_monitors_it_started(kafka_bootstrap, tmp_path):
    s = setup(tmp_path, kafka_bootstrap)
    started: list[Monitor] = []

    def failing_scenario() -> None:
        started.append(Monitor(s, tmp_path / "m.log", stage="sinks"))
        started[-1].wait_log("status page at", 60)  # up and running, then the check fails
        raise AssertionError("the scenario's check failed")

    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(run_scenario, failing_scenario)
        with pytest.raises(AssertionError, match="check failed"):
            fut.result(120)
        # the pool thread still lives (its end would also kill it: PR_SET_PDEATHSIG)
        assert started and started[0].proc.poll() is not None
