"""The messages stage 1 publishes for stage 2: window partials and watermark progress.

One partials topic with one partition carries them, in order: everything a source partition
says arrives in the order it said it, so when stage 2 sees partition p's watermark pass a
window, it has already seen p's partial for that window (if p had events there).

Wire format of a message value: ``frame(head_json, [sketch_bytes])`` (see
:func:`monitor.stage1.windows.frame`); the head is described by ``schemas/partial.schema.json``.
The key is ``"<partition>"`` for progress and ``"<partition>:<window_start_ms>"`` for partials
(``"<partition>:<window_start_ms>@<model version>"`` for a partial of one model version, with
``model.version_field``; the head's ``model_version`` is then set, and left out otherwise).

>>> m = PartialMessage(kind="progress", monitor="m", partition=2, n_partitions=4,
...                    watermark_ms=5000, next_offset=17)
>>> PartialMessage.from_bytes(m.to_bytes()) == m
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import orjson

from monitor.stage1.windows import frame, unframe

FORMAT_VERSION = 1


@dataclass(frozen=True)
class PartialMessage:
    kind: str  # "partial" | "progress"
    monitor: str
    partition: int
    n_partitions: int
    watermark_ms: int
    next_offset: int
    window_start_ms: int | None = None
    window_end_ms: int | None = None
    events: int = 0
    late_events: int = 0
    bad: dict[str, int] = field(default_factory=dict)
    profile_id: str = ""
    sketch: bytes | None = None
    counts: dict[str, int] = field(default_factory=dict)  # duplicates, schema samples
    model_version: str = ""  # the events' model version (model.version_field); "": config's

    @property
    def key(self) -> bytes:
        if self.kind == "partial":
            v = f"@{self.model_version}" if self.model_version else ""
            return f"{self.partition}:{self.window_start_ms}{v}".encode()
        return str(self.partition).encode()

    def head(self) -> dict:
        d = asdict(self)
        d.pop("sketch")
        if not self.model_version:
            d.pop("model_version")
        d["format_version"] = FORMAT_VERSION
        d["has_sketch"] = self.sketch is not None
        return d

    def to_bytes(self) -> bytes:
        return frame(orjson.dumps(self.head()), [self.sketch] if self.sketch is not None else [])

    @classmethod
    def from_bytes(cls, data: bytes) -> "PartialMessage":
        head, blobs = unframe(data)
        h = orjson.loads(head)
        if h.pop("format_version") != FORMAT_VERSION:
            raise ValueError("unknown partial format version")
        has = h.pop("has_sketch")
        return cls(**h, sketch=blobs[0] if has else None)
