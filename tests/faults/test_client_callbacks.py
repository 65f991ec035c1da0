"""Stage 1 survives client callbacks served right after its partition assignment.

confluent-kafka keeps one "call state" per client and thread while a call such as
``consume()`` serves librdkafka's callbacks. A call of the *same* client made from inside one
of its callbacks ends that state, and the next callback of the outer ``consume()`` aborts the
whole process (``CallState_get: Assertion 'cs != NULL' failed``, exit -6). Stage 1's
``on_assign`` looked the topic's partition count up with the consumer's own ``list_topics``:
when the broker went away just after an assignment, its error callback came next and the
monitor died (CI, tests/faults/test_stage2_start.py, two runs in a row).

Here any callback will do: the stage's clients get a statistics callback every 10 ms, so
several are served by the very ``consume()`` that ran the assignment. The stage runs in a
child process (an abort would take the test runner with it).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.e2e_harness import ROOT, create_topic

SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    from kernels import ReferenceProfile
    from monitor.config import from_dict
    from monitor.stages import make_source
    from monitor.topics import ensure_topics

    bootstrap, topic, name = sys.argv[1:4]
    cfg = from_dict({"monitor": name, "kafka": {"bootstrap": bootstrap,
                                                "session_timeout_ms": 6000},
                     "stream": {"topic": topic}, "features": {"numeric": ["x"]},
                     "windows": {"size": "1h"}, "reference": {"profile": "/r"},
                     "triggers": {"enabled": False}}, env={})
    profile = ReferenceProfile.build(numeric={"x": np.arange(100.0)}, categorical={})
    client = {"bootstrap.servers": bootstrap}
    ensure_topics(cfg, client)
    served = []
    src = make_source(cfg, profile, {**client, "statistics.interval.ms": 10,
                                     "stats_cb": lambda _json: served.append(time.monotonic())})
    stop = threading.Event()
    t = threading.Thread(target=src.run, args=(stop,), daemon=True)
    t.start()
    deadline = time.monotonic() + 90
    while not src.assigned and time.monotonic() < deadline:
        time.sleep(0.05)
    assert src.assigned, "stage 1 never got its partitions"
    at = time.monotonic()
    while sum(s > at for s in served) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    parts, n = sorted(src.parts), sum(s > at for s in served)
    stop.set()
    t.join(30)
    assert not t.is_alive(), "stage 1 did not stop"
    print("partitions", parts, "of", src.n_partitions, "callbacks after the assignment", n)
""")


@pytest.mark.kafka
@pytest.mark.timeout(180)
def test_stage1_lives_through_callbacks_served_right_after_its_assignment(kafka_bootstrap):
    import uuid

    topic = create_topic(kafka_bootstrap, 3)
    out = subprocess.run([sys.executable, "-c", SCRIPT, kafka_bootstrap, topic,
                          f"cb-{uuid.uuid4().hex[:6]}"],
                         capture_output=True, text=True, timeout=150, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "partitions [0, 1, 2] of 3 callbacks after the assignment" in out.stdout, out.stdout
    assert int(out.stdout.split()[-1]) >= 50
