"""Finding 9: the local broker must start whatever random cluster id it draws.

About one id in 64 begins with ``-``; ``kafka-storage format -t <id>`` then reads the id as an
option and the start fails. The test draws such an id on purpose.
"""

from __future__ import annotations

import itertools

import pytest
from confluent_kafka.admin import AdminClient

from monitor.dev.kafka import DevKafka

pytestmark = [pytest.mark.kafka]


def _id_starting_with_dash() -> str:
    for i in itertools.count():
        cid = DevKafka.cluster_id_for(f"seed-{i}")
        if cid.startswith("-"):
            return cid
    raise AssertionError("unreachable")


def test_a_cluster_id_that_begins_with_a_dash_still_formats_and_starts(tmp_path):
    cid = _id_starting_with_dash()
    with DevKafka(data_dir=tmp_path / "k", cluster_id=cid, heap="256m") as k:
        meta = (tmp_path / "k" / "logs" / "meta.properties").read_text()
        assert f"cluster.id={cid}" in meta
        md = AdminClient({"bootstrap.servers": k.bootstrap}).list_topics(timeout=10)
        assert md.brokers and md.cluster_id == cid
