"""Nothing a fault test started outlives it: monitor processes it left running (a failed
assertion before its ``finally``, a timeout) are killed at its teardown. The scenarios of
``test_faults.py`` run in threads of their own and clean up there
(:func:`tests.faults.harness.run_scenario`)."""

from __future__ import annotations

import threading

import pytest

from tests.faults.harness import kill_monitors


@pytest.fixture(autouse=True)
def _no_monitor_left_behind():
    yield
    kill_monitors(thread=threading.get_ident())
