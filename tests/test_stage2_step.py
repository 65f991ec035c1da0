"""Stage 2's atomic step without a broker: a failure or a crash at any step boundary, then a
restart from what was committed, gives the same reports and alerts as a run without it —
each window reported once, each alert once, the alert thread and the rolling reference and
the volume baseline carried over."""

from __future__ import annotations

from collections import deque

import pytest

from monitor.records import CheckResult, WindowReport
from monitor.stage1.partials import PartialMessage
from monitor.stage2.agents import Stage2Runner
from monitor.stage2.alerts import AlertPolicy
from monitor.stage2.step import Stage2State, Stage2Step, StepResult

# effect size of feature f0 per window: fires at window 2, resolves at window 5
EFFECT = [0.0, 0.0, 0.4, 0.4, 0.4, 0.0, 0.0, 0.0]


class Crash(Exception):
    pass


class MemoryStore:
    """The committed log of a :class:`TransactionalState`, in memory: a commit is the
    records + reports + alerts of one step, or nothing."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes | None]] = []
        self.reports: list[dict] = []
        self.alerts: list[dict] = []
        self.fail_at: int | None = None  # fail the n-th commit attempt (0-based)
        self.attempts = 0

    def load(self) -> Stage2State:
        return Stage2State.from_records(self.log)

    def commit(self, state: Stage2State, r: StepResult) -> None:
        n, self.attempts = self.attempts, self.attempts + 1
        if n == self.fail_at:
            raise Crash(f"broker gone at commit {n}")
        self.log += list(state.records(r))
        self.reports += [x.to_dict() for x in r.reports]
        self.alerts += [x.to_dict() for x in r.alerts]
        state.apply(r)


class Sketch:
    """A stand-in sketch with the verbs the rolling reference needs."""

    def __init__(self, n: int) -> None:
        self.n = n

    def to_bytes(self) -> bytes:
        return str(self.n).encode()

    @classmethod
    def from_bytes(cls, b: bytes) -> "Sketch":
        return cls(int(b))


class Evaluator:
    """Per window one ks check on f0; a rolling reference of the last 2 healthy windows
    (its sum goes into the report, so a lost or wrong reference changes the report)."""

    def __init__(self, policy: AlertPolicy) -> None:
        self.policy = policy
        self.rolling: deque = deque(maxlen=2)

    def report(self, w) -> WindowReport:
        i = (w.start_ms // 10) % len(EFFECT)
        d = EFFECT[i]
        c = CheckResult(check="ks", family="numeric_drift", feature="f0", statistic=d,
                        p_value=1e-12 if d else 0.5, effect_size=d, n_window=w.events,
                        n_reference=sum(s.n for _, _, s in self.rolling) or 1, sufficient=True,
                        detail={"baseline": sum(w.recent_events)})
        r = WindowReport("m", w.start_ms, w.end_ms, "p", w.events, 0, 0, w.partitions, {},
                         [c], False, "0.1.0")
        if not d:
            self.rolling.append((w.start_ms, w.end_ms, Sketch(w.events)))
        return r


def messages() -> list[bytes]:
    """Two partitions, 8 windows of 10 ms; partition 1's partials come late in each window."""
    out = []
    for w in range(0, 80, 10):
        out.append(PartialMessage("partial", "m", 0, 2, w + 10, w, w, w + 10, events=100 + w,
                                  sketch=b"x").to_bytes())
        out.append(PartialMessage("progress", "m", 0, 2, w + 10, w).to_bytes())
        out.append(PartialMessage("partial", "m", 1, 2, w + 10, w, w, w + 10, events=7,
                                  sketch=b"y").to_bytes())
        out.append(PartialMessage("progress", "m", 1, 2, w + 10, w).to_bytes())
    return out


def new_runner(store: MemoryStore) -> Stage2Runner:
    """A freshly started worker: nothing in memory, everything from the store."""
    policy = AlertPolicy(confirm_windows=1, resolve_windows=1)
    ev = Evaluator(policy)

    def set_rolling(d) -> None:
        ev.rolling = d

    step = Stage2Step(size_ms=10, slide_ms=10, merge=lambda blobs: len(blobs), history=3,
                      evaluate=ev.report, policy=policy, rolling=lambda: ev.rolling,
                      set_rolling=set_rolling, load_sketch=Sketch.from_bytes)
    return Stage2Runner(step, store)


def run(fail_at: int | None = None, restart: bool = True) -> MemoryStore:
    store = MemoryStore()
    store.fail_at = fail_at
    runner = new_runner(store)
    msgs = list(enumerate(messages()))
    i = 0
    while i < len(msgs):
        offset, value = msgs[i]
        try:
            runner.handle(offset, value)
        except Crash:
            if restart:  # the process died: a new one starts from the last committed offset
                runner = new_runner(store)
                committed = int(store.load().doc["offset"])
                # Faust re-delivers from its own committed offset, at or before ours:
                # start two messages back (those are recognised and skipped)
                i = max(0, committed - 1)
            continue
        i += 1
    return store


def test_reference_run_fires_once_and_resolves_in_the_same_thread():
    s = run()
    assert [r["window_start_ms"] for r in s.reports] == list(range(0, 80, 10))
    kinds = [(a["kind"], a["window_start_ms"]) for a in s.alerts]
    assert kinds == [("firing", 20), ("resolved", 50)]
    assert s.alerts[1]["thread_alert_id"] == s.alerts[0]["alert_id"]


@pytest.mark.parametrize("fail_at", range(len(messages())))
def test_a_crash_at_any_commit_changes_nothing_downstream(fail_at):
    want = run()
    got = run(fail_at=fail_at)
    assert got.reports == want.reports
    assert got.alerts == want.alerts


@pytest.mark.parametrize("fail_at", [5, 13, 21])
def test_a_failed_commit_retried_in_the_same_process_loses_nothing(fail_at):
    """The runner keeps its objects but reloads the state (as ``handle_until_done`` does)."""
    want = run()
    store = MemoryStore()
    store.fail_at = fail_at
    runner = new_runner(store)
    for offset, value in enumerate(messages()):
        try:
            runner.handle(offset, value)
        except Crash:
            runner.invalidate()
            runner.handle(offset, value)
    assert store.reports == want.reports and store.alerts == want.alerts


def test_an_unreadable_message_is_counted_and_skipped_once():
    store = MemoryStore()
    runner = new_runner(store)
    runner.handle(0, b"not a partial")
    runner.handle(0, b"not a partial")  # redelivered: absorbed already
    assert store.load().doc["meta"]["unreadable_partials"] == 1
