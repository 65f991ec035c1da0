"""Stage 2 never stalls Faust's event loop on a step stuck in a broker outage (#11).

A step (its Kafka transaction, ``init_transactions`` on a restore) runs in a worker thread and
may wait minutes for a broker. The assignment signal, which runs on the loop, used to take the
runner's lock to drop the state: a rebalance during an outage then froze the loop (no
heartbeats, no other agent, no timers) until the stuck step gave up.
"""

from __future__ import annotations

import asyncio

from monitor.stage2.agents import Stage2Runner
from monitor.stage2.state import TransactionalState


def test_a_rebalance_during_a_stuck_step_returns_at_once_and_the_step_reloads_after():
    # nothing listens on port 1: init_transactions waits its whole timeout, then fails
    store = TransactionalState({"bootstrap.servers": "127.0.0.1:1", "log_level": 0},
                               state_topic="s", reports_topic="r", alerts_topic="a",
                               transactional_id="loop-test", timeout_s=3.0)
    runner = Stage2Runner(None, store)
    seen = {}

    async def main() -> None:
        task = asyncio.create_task(runner.handle_until_done(0, b"{}"))
        while not runner._lock.locked():  # the step is in its thread, restoring the state
            await asyncio.sleep(0.01)
        runner.invalidate()  # what Faust's on_partitions_assigned does, on the loop
        seen["step_still_running"] = runner._lock.locked()
        ticks = 0
        while runner.failures == 0:  # the loop keeps running while the step is stuck
            ticks += 1
            await asyncio.sleep(0.01)
        seen["ticks"] = ticks
        seen["reload"] = getattr(runner, "_reload", None)
        task.cancel()

    asyncio.run(main())
    assert seen["step_still_running"], "invalidate() waited for the stuck step"
    assert seen["ticks"] > 0
    assert seen["reload"] is True  # the failed attempt asks for a reload before its retry
    assert "TIMED_OUT" in runner.last_error
