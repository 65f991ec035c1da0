"""Stage 1's reads beside its consumer: the newest stored state of each partition from the
compacted state topic, and the cached high watermark of a partition."""

from __future__ import annotations

from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


def load_states(client_config: dict[str, Any], group_id: str, state_topic: str,
                partitions: set[int], prefix: str = "") -> dict[int, bytes]:
    """The newest stored state of each of ``partitions`` (keyed by ``prefix`` + the partition
    number; a tombstone removes it; other keys are skipped), read to the end of the
    one-partition compacted state topic."""
    c = Consumer({**client_config, "group.id": group_id,
                  "enable.auto.commit": False, "enable.partition.eof": True})
    tp = TopicPartition(state_topic, 0)
    lo, hi = c.get_watermark_offsets(tp, timeout=10)
    found: dict[int, bytes] = {}
    if hi > lo:
        c.assign([TopicPartition(state_topic, 0, OFFSET_BEGINNING)])
        pos = lo
        while pos < hi:
            for m in c.consume(1000, timeout=1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        pos = hi
                    continue
                pos = m.offset() + 1
                k = (m.key() or b"").decode()
                if not k.startswith(prefix) or not k[len(prefix):].isdigit():
                    continue
                p = int(k[len(prefix):])
                if p in partitions:
                    if m.value() is None:
                        found.pop(p, None)
                    else:
                        found[p] = m.value()
    c.close()
    return found


def high_watermark(consumer: Consumer, topic: str, partition: int,
                   timeout_s: float = 0.1) -> int | None:
    """The partition's high watermark from the consumer's cache (None when unknown: the broker
    is away or nothing was fetched yet). confluent-kafka raises its ``KafkaError`` object here,
    which is no ``Exception`` subclass, hence the bare except."""
    try:
        _, hi = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                               timeout=timeout_s, cached=True)
    except:  # noqa: E722
        return None
    return hi if hi >= 0 else None
