"""The shared silence store on a compacted topic of the real broker: what one client adds,
every follower sees; removing writes a tombstone; a record that is not a silence is skipped."""

from __future__ import annotations

import time

import pytest

from monitor.records import Silence
from monitor.stage2.silences import SilenceFollower, SilenceStore, silence_id

pytestmark = pytest.mark.kafka


def _until(cond, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_add_list_follow_remove(kafka_bootstrap, produce):
    client = {"bootstrap.servers": kafka_bootstrap}
    topic = f"silences-{time.monotonic_ns()}"
    here, there = SilenceStore(client, topic), SilenceStore(client, topic)  # two machines
    follower = SilenceFollower(client, topic).start()
    try:
        a = Silence(reason="backfill", feature="f0", monitor="m", until_ms=2_000)
        b = Silence(reason="deploy", check="ks", monitor="m")
        sid = here.add(a)
        here.add(b)
        assert sid == silence_id(a)
        assert there.list() == {silence_id(a): a, silence_id(b): b}
        assert there.active(now_ms=2_000) == [b]  # a expired then
        produce(topic, [b"not json"], key=b"junk")  # a foreign record: skipped
        _until(lambda: sorted(s.reason for s in follower.current()) == ["backfill", "deploy"])
        _until(lambda: follower.errors == 1)
        # silencing the same keys again replaces the silence
        here.add(Silence(reason="longer backfill", feature="f0", monitor="m"))
        _until(lambda: sorted(s.reason for s in follower.current())
               == ["deploy", "longer backfill"])
        assert there.remove(feature="f0") == 1
        _until(lambda: [s.reason for s in follower.current()] == ["deploy"])
        assert there.remove(silence_id(b)) == 1 and here.list() == {}
        _until(lambda: follower.current() == [])
        # a new follower (a restarted worker) reads the same state from the topic
        again = SilenceFollower(client, topic).start()
        assert again.current() == [] and again.errors == 1
        again.stop()
    finally:
        follower.stop()
