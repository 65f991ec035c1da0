"""A Faust worker that iterates a topic one event at a time and counts what it sees.

This is the per-event Faust baseline: what an agent costs when every event passes through it.
Run it as a process (``python -m bench.faust_count BOOTSTRAP TOPIC EXPECTED OUT.json``); it
writes its counts as JSON to OUT once it has seen EXPECTED events, then exits. Used by the
Kafka round-trip test and by the benchmarks.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid

import faust


def build(bootstrap: str, topic_name: str, expected: int, out: str) -> faust.App:
    app = faust.App(
        f"faust-count-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=0.5,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        value_serializer="raw",
        producer_linger_ms=5,
    )
    topic = app.topic(topic_name, value_serializer="raw")
    state = {"n": 0, "ids": set(), "dups": 0, "per_partition": {}, "t0": None}

    @app.agent(topic)
    async def count(stream):
        async for event in stream.events():
            if state["t0"] is None:
                state["t0"] = time.perf_counter()
            msg = event.message
            json.loads(event.value)  # the per-event work every agent pays at least
            ident = (msg.partition, msg.offset)  # a record delivered twice is a duplicate
            if ident in state["ids"]:
                state["dups"] += 1
            state["ids"].add(ident)
            state["n"] += 1
            p = state["per_partition"]
            p[msg.partition] = p.get(msg.partition, 0) + 1
            if state["n"] >= expected:
                elapsed = time.perf_counter() - state["t0"]
                with open(out, "w") as f:
                    json.dump({"events": state["n"], "unique_ids": len(state["ids"]),
                               "duplicates": state["dups"], "seconds": elapsed,
                               "per_partition": {str(k): v for k, v in p.items()}}, f)
                logging.shutdown()
                os._exit(0)

    return app


if __name__ == "__main__":
    bootstrap, topic_name, expected, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    app = build(bootstrap, topic_name, expected, out)
    sys.argv = [sys.argv[0], "worker", "-l", os.environ.get("FAUST_LOGLEVEL", "warn"), "--without-web"]
    app.main()
