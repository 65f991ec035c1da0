"""The fault suite against the real broker (issue 11; findings 1, 3, 10).

The four scenarios of :mod:`tests.faults.scenarios` start together (each on its own topic
and monitor name, the broker-restart one on a broker of its own) and the tests below judge
what each saw: every window's event count and sketch digest equal those computed from the
producer's own record, no window missing, none reported twice with different content, no
window paged twice.
"""

from __future__ import annotations

import dataclasses
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.faults import scenarios
from tests.faults.harness import FAULT_EXIT, assert_exact, run_scenario

# the scenarios run side by side; a test waits for its own (a few minutes on a quiet machine)
pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(2700)]


@pytest.fixture(scope="module")
def outcomes(kafka_bootstrap, tmp_path_factory):
    pool = ThreadPoolExecutor(4, thread_name_prefix="fault-scenario")
    futs = {
        "crash_points": pool.submit(run_scenario, scenarios.crash_points, kafka_bootstrap,
                                    tmp_path_factory.mktemp("crash-points")),
        "kill9": pool.submit(run_scenario, scenarios.kill9, kafka_bootstrap,
                             tmp_path_factory.mktemp("kill9")),
        "two_workers": pool.submit(run_scenario, scenarios.two_workers, kafka_bootstrap,
                                   tmp_path_factory.mktemp("two-workers")),
        "broker_restarts": pool.submit(run_scenario, scenarios.broker_restarts,
                                       tmp_path_factory.mktemp("broker-restarts")),
    }
    yield futs
    pool.shutdown(wait=True, cancel_futures=True)
    out = os.environ.get("STREAMDRIFT_FAULTS_OUT")  # bench/faults.py reads the outcomes
    if out:
        Path(out).write_text(json.dumps(
            {name: (dataclasses.asdict(f.result()) if f.exception() is None else
                    {"error": repr(f.exception())}) for name, f in futs.items()},
            default=str, indent=1))


def test_a_crash_at_every_step_boundary_loses_and_doubles_nothing(outcomes):
    o = outcomes["crash_points"].result(2400)
    assert o.exits == [(p, FAULT_EXIT, True) for p, _ in scenarios.PLAN]
    assert_exact(o.verdict)
    assert o.verdict.bad_by_window == o.want_bad


def test_kill_9_at_random_moments_while_events_flow(outcomes):
    o = outcomes["kill9"].result(2400)
    assert o.notes["kills_while_flowing"] == o.injected >= 5
    assert_exact(o.verdict)
    assert o.verdict.bad_by_window == o.want_bad


def test_two_workers_share_from_the_start_and_one_is_killed_at_60_percent(outcomes):
    o = outcomes["two_workers"].result(2400)
    a, b = o.notes["shares"]
    assert a and b and sorted(a + b) == [0, 1, 2, 3]
    assert_exact(o.verdict)
    assert o.notes["differ_from_one_worker"] == []


def test_broker_restarts_lose_nothing_and_the_monitor_recovers_alone(outcomes):
    o = outcomes["broker_restarts"].result(2400)
    assert_exact(o.verdict)
    assert len(o.recovery_s) == 3
    assert max(o.recovery_s) <= o.notes["limit_s"], o.recovery_s
