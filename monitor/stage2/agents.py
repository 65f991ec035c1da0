"""Stage 2 as a Faust app: thin agents over changelog-backed tables.

The agent receives partial messages, hands them to :class:`WindowAggregator` (whose tables
are Faust tables here, so a restarted worker recovers them from their changelog topics),
evaluates each closed window and publishes its report. All decisions live in
:mod:`monitor.stage2.aggregate`, :mod:`monitor.stage2.evaluate` and :mod:`monitor.stage2.alerts`; nothing here
counts events, so Faust's at-least-once redelivery only ever replays idempotent upserts.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

import faust

from monitor.faults import fault_point
from monitor.stage2.aggregate import ClosedWindow, Tables, WindowAggregator
from monitor.stage1.partials import PartialMessage
from monitor.records import WindowReport

log = logging.getLogger("streamdrift.agents")


def build_app(*, app_id: str, broker: str, broker_credentials: Any = None,
              partials_topic: str, size_ms: int, slide_ms: int | None,
              merge: Callable[[list[bytes]], Any],
              on_closed: Callable[[ClosedWindow], WindowReport],
              publish: list[Callable[[WindowReport], Any]],
              session_timeout_s: float = 10.0, data_dir: str | None = None,
              web_port: int | None = None, history: int = 12) -> faust.App:
    """A Faust app running stage 2. ``publish`` callables receive each report (async ones
    are awaited) — the reports topic, a JSONL file, the alert policy."""
    app = faust.App(
        app_id,
        broker=broker,
        broker_credentials=broker_credentials,
        store="memory://",  # rebuilt from the changelog topics at start
        topic_partitions=1,
        topic_replication_factor=1,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_host="127.0.0.1",
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=max(0.3, session_timeout_s / 10),
        broker_commit_every=1,
        consumer_auto_offset_reset="earliest",
        datadir=data_dir or f"/tmp/streamdrift-faust-{app_id}",
        table_cleanup_interval=3600.0,
        producer_max_request_size=20_000_000,
        producer_compression_type="zstd",  # cramjam (a dependency) provides it
        stream_wait_empty=False,
    )
    raw = faust.Schema(key_type=str, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    topic = app.topic(partials_topic, schema=raw, partitions=1)

    def table(name: str) -> faust.Table:
        schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
        return app.Table(name, default=None, partitions=1, schema=schema)

    # JSON everywhere: Faust's changelog recovery mishandles raw-bytes values, so partial
    # bytes are stored base64-encoded (BytesTable)
    tables = Tables(partials=BytesTable(table("partials")), windows=table("windows"),
                    progress=table("progress"), meta=table("meta"))
    agg = WindowAggregator(size_ms, slide_ms, merge, tables, history)

    @app.agent(topic)
    async def windows(stream):  # noqa: D401 - a Faust agent
        async for value in stream:
            try:
                msg = PartialMessage.from_bytes(value)
            except Exception as e:  # a foreign message on our topic: count, log, go on
                tables.meta["unreadable_partials"] = int(
                    tables.meta.get("unreadable_partials") or 0) + 1
                log.error("unreadable partial skipped: %s", e)
                continue
            for closed in agg.on_message(msg):
                report = on_closed(closed)
                for p in publish:
                    r = p(report)
                    if hasattr(r, "__await__"):
                        await r
                fault_point("stage2.after_report")

    app.streamdrift_aggregator = agg  # for tests and the metrics endpoint
    return app


class BytesTable(MutableMapping):
    """A view of a JSON-valued Faust table that stores bytes as base64 text."""

    def __init__(self, table: faust.Table) -> None:
        self.table = table

    def __getitem__(self, key: str) -> bytes:
        v = self.table[key]
        if v is None:
            raise KeyError(key)
        return base64.b64decode(v)

    def __setitem__(self, key: str, value: bytes) -> None:
        self.table[key] = base64.b64encode(value).decode()

    def __delitem__(self, key: str) -> None:
        del self.table[key]

    def __iter__(self):
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)

