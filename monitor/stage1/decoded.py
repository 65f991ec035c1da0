"""What decoding one batch produces: the good events' columns (:class:`Decoded`) and the
messages left out with their reasons (:class:`BadMessage`), the same whichever decoder
(JSON, Avro, Arrow table) made them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kernels.batch import ColumnBatch

Sample = tuple[int, int, tuple[str, ...]]  # (index in the input, offset, unknown fields)


@dataclass(frozen=True)
class BadMessage:
    """A message left out of the batch: its index in the input, offset, reason (one of
    :data:`REASONS`) and a short error text for the dead-letter headers."""

    index: int
    offset: int
    reason: str
    error: str


@dataclass(frozen=True)
class Decoded:
    """What one decode call produced.

    ``field_errors[field]`` counts ``missing`` / ``null`` / ``type_error`` among the good
    events; ``samples`` lists, for each good message at an offset divisible by
    ``sample_every`` (a rule on offsets, so it does not depend on batch boundaries), its offset
    and the fields it carries that are neither read nor known (``stream.known_fields``, the
    reference's columns): a new field in the producer's schema. ``unexpected_fields`` and
    ``sampled`` sum them up. ``absent_fields`` lists configured fields absent from every good
    event (a field that disappeared). ``fallback`` says whether the batch took the slow path.
    """

    batch: ColumnBatch
    bad: list[BadMessage]
    field_errors: dict[str, dict[str, int]]
    absent_fields: tuple[str, ...] = ()
    fallback: bool = False
    samples: list[Sample] = field(default_factory=list)
    fallback_messages: int = 0  # JSON messages the compiled scanner left to the general path

    @property
    def unexpected_fields(self) -> dict[str, int]:
        return dict(Counter(name for _, _, names in self.samples for name in names))

    @property
    def sampled(self) -> int:
        return len(self.samples)

    @property
    def bad_counts(self) -> dict[str, int]:
        return dict(Counter(b.reason for b in self.bad))


class _Kind:
    NUM, STR, OUTCOME, ID = "num", "str", "outcome", "id"
