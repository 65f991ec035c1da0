"""The delayed-label part of ``make demo``: the outcomes of the credit model's decisions arrive
on their own topic, each at a random delay up to ``labels.max_delay`` after its prediction,
and from a known window on the model goes wrong in one channel only (the outcomes there stop
following the score). The monitor joins the two streams live, and its performance reports
and alerts name that slice; the other channels stay quiet.

Nothing here is canned: :class:`PerformanceLines` only formats the monitor's own reports.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pyarrow as pa

LABELS_TOPIC = "loan-outcomes"
MAX_DELAY_S = 20
DEGRADED = "app"  # the channel whose outcomes stop following the score
SLICE_KEY = "channel"
MAX_DROP = 0.15  # a drop of more than 15 points below the reference pages


def with_labels(d: dict, labels_topic: str = LABELS_TOPIC) -> dict:
    """The demo config ``d`` with the label stream: outcomes (``defaulted``) on their own
    topic instead of inside the prediction events, sliced by channel."""
    d["prediction"].pop("label", None)  # the outcome no longer rides in the event
    d["model"] = {"name": "credit-risk", "version": "v3.2"}
    d["labels"] = {"topic": labels_topic, "id_field": "event_id", "label_field": "defaulted",
                   "event_time_field": "known_at", "max_delay": f"{MAX_DELAY_S}s",
                   "min_labelled": 200,
                   "slices": {"keys": [SLICE_KEY], "top_k": 4, "min_size": 200},
                   "checks": {"alpha": 0.01, "max_drop": MAX_DROP}}
    return d


def outcomes(cols: dict, degrade_at_ms: int | None, seed: int, max_delay_ms: int,
             ) -> dict[str, np.ndarray]:
    """The label stream of the generated events ``cols`` (which lose their ``defaulted``
    column): per event its id, outcome and the time it became known (event time plus a
    uniform delay in [0, ``max_delay_ms``]), in that order. From ``degrade_at_ms`` on, the
    outcomes of channel :data:`DEGRADED` are drawn against the score (the model is as wrong
    there as it used to be right)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(cols.pop("defaulted"), np.int8)
    t = np.asarray(cols["ts"], np.int64)
    if degrade_at_ms is not None:
        bad = (cols[SLICE_KEY] == DEGRADED) & (t >= degrade_at_ms)
        score = np.asarray(cols["score"], np.float64)[bad]
        y = y.copy()
        y[bad] = (rng.random(int(bad.sum())) < 1.0 - score).astype(np.int8)
    known = t + rng.integers(0, max_delay_ms + 1, t.size)
    order = np.argsort(known, kind="stable")
    return {"event_id": cols["event_id"][order], "defaulted": y[order],
            "known_at": known[order]}


def outcome_table(o: dict[str, np.ndarray]) -> pa.Table:
    """The label file of ``profile build --labels`` (the reference performance)."""
    return pa.table({"event_id": pa.array(o["event_id"].tolist(), pa.string()),
                     "defaulted": pa.array(o["defaulted"].astype(np.int64)),
                     "known_at": pa.array(o["known_at"])})


def outcome_messages(o: dict[str, np.ndarray]) -> list[tuple[bytes, bytes]]:
    """(key, value) per label, in label-time order; keyed by event id like the predictions,
    so an event's outcome lands in the partition of its prediction."""
    ids, ys, ts = o["event_id"].tolist(), o["defaulted"].tolist(), o["known_at"].tolist()
    return [(i.encode(), orjson.dumps({"event_id": i, "defaulted": y, "known_at": t}))
            for i, y, t in zip(ids, ys, ts)]


class PerformanceLines:
    """Lines for the monitor's performance reports: one when a window's figures first flag a
    slice, one when the window's labels are all in (or expired). Keeps the latest revision
    per window (``latest``) for the end-of-run summary and the demo's test."""

    def __init__(self, t0_ms: int) -> None:
        self.t0 = t0_ms
        self.latest: dict[int, dict] = {}
        self.shown: dict[int, set] = {}
        self.done: set[int] = set()

    def window(self, r: dict) -> str:
        a, b = (r["window_start_ms"] - self.t0) // 1000, (r["window_end_ms"] - self.t0) // 1000
        return f"{f'{a}s–{b}s':>11}"

    def add(self, r: dict) -> list[str]:
        w = r["window_start_ms"]
        if r["revision"] < self.latest.get(w, {}).get("revision", -1):
            return []
        self.latest[w] = r
        o = r["overall"]
        complete = o["labelled"] + o["expired"] >= o["predictions"] > 0
        flagged: dict[str, list] = {}
        for f in r["findings"]:
            if f["alert"]:
                flagged.setdefault(f["slice"], []).append(f)
        new = set(flagged) - self.shown.setdefault(w, set())
        out = []
        head = (f"performance {self.window(r)} revision {r['revision']:>3}, labels "
                f"{o['label_completeness']:>4.0%} in")
        if new:
            self.shown[w] |= new
            out.append(f"{head}  ✗ " + "; ".join(_scope(s, fs) for s, fs in flagged.items()))
        if complete and w not in self.done:
            self.done.add(w)
            if not flagged:
                acc = ", ".join(f"{k.split('=')[-1]} {v['accuracy']:.2f}"
                                for k, v in r["slices"].items()
                                if v["labelled"] and not math.isnan(v["accuracy"] or math.nan))
                out.append(f"{head}  ✓ every slice as good as the reference (accuracy {acc})")
            elif not new:
                out.append(f"{head}  ✗ still: " + ", ".join(_name(s) for s in flagged))
        return out

    def complete(self, windows: list[int]) -> bool:
        return all(w in self.done for w in windows)


def _name(scope: str) -> str:
    return "all channels" if scope == "*" else scope


def _scope(scope: str, findings: list) -> str:
    """``channel=app: accuracy 0.29 (0.69), recall 0.30 (0.68)``: figure (reference)."""
    figs = ", ".join(f"{f['check'].rsplit('_', 1)[0]} {f['value']:.2f}"
                     + (f" ({f['reference']:.2f})" if f["reference"] is not None else "")
                     for f in findings)
    return f"{_name(scope)}: {figs}"
