"""Stage 2's step: the state so far + one partials message -> the next state, its reports and
its alerts. Plain Python, no broker: computing a step changes nothing.

The state of stage 2 (:class:`Stage2State`) is one small JSON document plus byte blobs:

- ``doc["offset"]``: the partials-topic offset of the last message absorbed. A message at or
  below it was absorbed already (a redelivery after a crash) and makes no step;
- ``doc["meta"]``, ``doc["progress"]``, ``doc["windows"]``: the window bookkeeping of
  :class:`~monitor.stage2.aggregate.WindowAggregator`, the volume baseline
  (``meta["recent_events"]``) among it;
- ``doc["policy"]``: the alert policy's state (firing keys, confirmations, last notification,
  thread ids), :meth:`AlertPolicy.state_to_dict`;
- ``doc["rolling"]``: the windows of the rolling reference, ``[start, end]`` pairs whose
  sketches are the blobs ``rolling/<start>``;
- blobs ``partial/<window>:<partition>``: the partials of windows still open.

A step returns a :class:`StepResult` — the whole next document, the blobs to put and to delete,
the reports and the alerts — which the caller makes durable in one go (one Kafka transaction,
:mod:`monitor.stage2.state`) and only then applies to its in-memory state. A step that raises
leaves the state as it was, so it can simply be tried again; it never half-happens.

>>> from monitor.stage1.partials import PartialMessage
>>> step = Stage2Step(size_ms=10, slide_ms=10, merge=lambda blobs: None, history=4,
...                   evaluate=lambda w: w.events)
>>> state = Stage2State.empty()
>>> r = step(state, 0, PartialMessage("partial", "m", 0, 1, 25, 3, 0, 10, 3).to_bytes())
>>> r.reports, sorted(r.puts), state.doc["offset"]
([], ['partial/0:0'], -1)
>>> state.apply(r)
>>> r = step(state, 1, PartialMessage("progress", "m", 0, 1, 25, 3).to_bytes())
>>> r.reports, r.deletes  # windows [0, 10) and [10, 20) closed; the partial's blob goes
([3, 0], ['partial/0:0'])
>>> state.apply(r); step(state, 1, b"redelivered after a crash") is None
True
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from monitor.stage1.partials import PartialMessage
from monitor.stage2.aggregate import ClosedWindow, Tables, WindowAggregator

log = logging.getLogger("streamdrift.stage2")

PARTIAL = "partial/"
ROLLING = "rolling/"


def _empty_doc() -> dict[str, Any]:
    return {"offset": -1, "meta": {}, "progress": {}, "windows": {}, "policy": {},
            "rolling": []}


@dataclass
class StepResult:
    """What one step writes: all of it becomes visible together, or none of it."""

    offset: int
    doc: dict[str, Any]
    puts: dict[str, bytes] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    reports: list[Any] = field(default_factory=list)   # WindowReport (or what evaluate returns)
    alerts: list[Any] = field(default_factory=list)    # Alert


@dataclass
class Stage2State:
    """The durable state of stage 2 (see the module docstring)."""

    doc: dict[str, Any]
    blobs: dict[str, bytes]

    @classmethod
    def empty(cls) -> "Stage2State":
        return cls(_empty_doc(), {})

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, bytes | None]]) -> "Stage2State":
        """Rebuild from ``(key, value)`` records in log order (``None``: deleted), as read
        back from the compacted state topic."""
        state = cls.empty()
        for key, value in records:
            if key == "doc":
                if value is not None:
                    state.doc = {**_empty_doc(), **orjson.loads(value)}
            elif value is None:
                state.blobs.pop(key, None)
            else:
                state.blobs[key] = value
        return state

    def records(self, r: StepResult) -> Iterator[tuple[str, bytes | None]]:
        """The records that make ``r`` durable: blobs first, the document last."""
        for k, v in r.puts.items():
            yield k, v
        for k in r.deletes:
            yield k, None
        yield "doc", orjson.dumps(r.doc)

    def apply(self, r: StepResult) -> None:
        """Adopt a step once it is durable."""
        self.blobs.update(r.puts)
        for k in r.deletes:
            self.blobs.pop(k, None)
        self.doc = r.doc


class _Prefixed(MutableMapping[str, bytes]):
    """A view of the blobs under one prefix that records writes instead of making them."""

    def __init__(self, base: Mapping[str, bytes], prefix: str) -> None:
        self.base, self.prefix = base, prefix
        self.puts: dict[str, bytes] = {}
        self.deleted: set[str] = set()

    def __getitem__(self, k: str) -> bytes:
        if k in self.deleted:
            raise KeyError(k)
        if k in self.puts:
            return self.puts[k]
        return self.base[self.prefix + k]

    def __setitem__(self, k: str, v: bytes) -> None:
        self.deleted.discard(k)
        self.puts[k] = v

    def __delitem__(self, k: str) -> None:
        self[k]  # KeyError when absent
        self.puts.pop(k, None)
        self.deleted.add(k)

    def __iter__(self) -> Iterator[str]:
        n = len(self.prefix)
        keys = {k[n:] for k in self.base if k.startswith(self.prefix)} | set(self.puts)
        return iter(sorted(keys - self.deleted))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Stage2Step:
    """``step(state, offset, message_bytes) -> StepResult | None`` (None: absorbed already).

    ``evaluate(closed_window) -> report``; ``performance`` (optional) absorbs messages of
    kind ``performance`` (:mod:`monitor.stage2.performance_step`); ``policy`` (an
    :class:`~monitor.stage2.alerts.AlertPolicy`, optional) turns reports into alerts, its
    state loaded from and saved into the document at every step; ``silences()`` gives the
    silences in force (read once per step that closes a window); ``rolling`` (optional) is
    the evaluator's rolling-reference deque of ``(start, end, sketch)``, restored from the
    blobs with ``load_sketch`` whenever it differs from the document.
    """

    def __init__(self, *, size_ms: int, slide_ms: int | None,
                 merge: Callable[[list[bytes]], Any], history: int,
                 evaluate: Callable[[ClosedWindow], Any], policy: Any = None,
                 silences: Callable[[], Iterable[Any]] = tuple,
                 rolling: Callable[[], deque] | None = None,
                 set_rolling: Callable[[deque], None] | None = None,
                 load_sketch: Callable[[bytes], Any] | None = None,
                 performance: Callable[..., None] | None = None) -> None:
        self.size_ms, self.slide_ms, self.merge, self.history = size_ms, slide_ms, merge, history
        self.evaluate = evaluate
        self.policy = policy
        self.silences = silences
        self.rolling, self.set_rolling, self.load_sketch = rolling, set_rolling, load_sketch
        self.performance = performance  # labels: a performance_step.PerformanceStep

    def __call__(self, state: Stage2State, offset: int, value: bytes) -> StepResult | None:
        if offset <= int(state.doc.get("offset", -1)):
            return None
        doc = orjson.loads(orjson.dumps(state.doc))  # a private copy: the state stays as is
        doc["offset"] = offset
        try:
            msg = PartialMessage.from_bytes(value)
        except Exception as e:  # a foreign message on our topic: count it, go on
            meta = doc["meta"]
            meta["unreadable_partials"] = int(meta.get("unreadable_partials") or 0) + 1
            log.error("unreadable partial at offset %d skipped: %s", offset, e)
            return StepResult(offset, doc)
        if msg.kind == "performance":  # the label join's snapshots: performance_step.py
            result = StepResult(offset, doc)
            if self.performance is not None:
                self.performance(state, result, msg, self.policy, self.silences)
            return result
        partials = _Prefixed(state.blobs, PARTIAL)
        tables = Tables(partials=partials, windows=doc["windows"], progress=doc["progress"],
                        meta=doc["meta"])
        agg = WindowAggregator(self.size_ms, self.slide_ms, self.merge, tables, self.history)
        closed = agg.on_message(msg)
        result = StepResult(offset, doc,
                            puts={PARTIAL + k: v for k, v in partials.puts.items()},
                            deletes=sorted(PARTIAL + k for k in partials.deleted))
        if closed:
            self._evaluate(state, closed, result)
        return result

    def _evaluate(self, state: Stage2State, closed: list[ClosedWindow], r: StepResult) -> None:
        policy, doc = self.policy, r.doc
        if policy is not None:
            policy.load_state(doc["policy"])
            policy.set_silences(list(self.silences()))
        before = self._restore_rolling(state, doc)
        for w in closed:
            report = self.evaluate(w)
            r.reports.append(report)
            if policy is not None:
                r.alerts += policy.update(report).alerts
        if policy is not None:
            doc["policy"] = policy.state_to_dict()
        if self.rolling is not None:
            now = {int(s): (s, e, sk) for s, e, sk in self.rolling()}
            doc["rolling"] = [[int(s), int(e)] for s, e, _ in self.rolling()]
            for s in sorted(set(now) - before):
                r.puts[f"{ROLLING}{s}"] = now[s][2].to_bytes()
            r.deletes += [f"{ROLLING}{s}" for s in sorted(before - set(now))]

    def _restore_rolling(self, state: Stage2State, doc: dict[str, Any]) -> set[int]:
        """Make the evaluator's rolling reference the document's; its window starts."""
        if self.rolling is None:
            return set()
        want = [(int(s), int(e)) for s, e in doc.get("rolling") or []]
        have = [(int(s), int(e)) for s, e, _ in self.rolling()]
        if have != want:
            assert self.set_rolling is not None and self.load_sketch is not None
            maxlen = self.rolling().maxlen
            self.set_rolling(deque(((s, e, self.load_sketch(state.blobs[f"{ROLLING}{s}"]))
                                    for s, e in want), maxlen=maxlen))
        return {s for s, _ in want}
