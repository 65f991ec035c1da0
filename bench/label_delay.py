"""How long after a degradation starts it is alerted, when labels come late — through
``replay --labels`` (:mod:`monitor.replay_labels`): the config, the reference profile and
its reference performance, the files decoded as replay decodes them, the same join, merge
and checks.

A degradation starts at a window boundary in one slice (``channel=app``,
:mod:`monitor.dev.labelled`; a second slice key, ``state``, shares the window's budget);
labels arrive uniformly within ``max_delay``. Replay feeds predictions and labels in arrival
order and commits every ``step`` of arrival time; the first commit at which a window from the
onset on has a performance alert naming ``channel=app`` gives the delay, in windows from the
onset. Baseline: waiting for complete labels, i.e. one window + the max delay after the
onset.

Used by ``bench/bench_labels.py`` (figure ``labels.delay_windows_degradation``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from monitor.config import from_dict
from monitor.dev.labelled import labelled_stream
from monitor.profile import build_profile, save_profile
from monitor.replay_labels import (join_files, load_reference, reference_path,
                                   reference_sketch, window_report)

WINDOW = 60_000
ONSET = 5 * WINDOW
EVENTS_PER_S = 20.0
STEP_MS = 5_000
CHANNELS = np.array(["web", "app", "store", "kiosk"])  # by volume; top 3 + other
STATES = np.array(["CA", "NY", "TX"])


def config(tmp: Path, max_delay_ms: int) -> dict:
    return {
        "monitor": "bench-labels",
        "kafka": {"bootstrap": "127.0.0.1:9"},
        "stream": {"topic": "preds", "event_time": {"field": "ts", "unit": "ms"},
                   "event_id_field": "event_id"},
        "features": {"numeric": ["x"], "categorical": ["channel", "state"]},
        "prediction": {"score": "score", "threshold": 0.5},
        "windows": {"size": f"{WINDOW}ms", "allowed_lateness": "1s"},
        "reference": {"profile": str(tmp / "ref.profile")},
        "model": {"name": "bench", "version": "1"},
        "labels": {"topic": "outcomes", "id_field": "event_id", "label_field": "y",
                   "event_time_field": "known_at", "max_delay": f"{max_delay_ms}ms",
                   "min_labelled": 100, "slices": {"keys": ["channel", "state"], "top_k": 3,
                                                   "min_size": 100},
                   "checks": {"alpha": 0.01, "max_drop": 0.05}},
    }


def tables(n: int, seed: int, max_delay_ms: int, **kw) -> tuple[pa.Table, pa.Table]:
    p, l = labelled_stream(n=n, seed=seed, events_per_s=EVENTS_PER_S,
                           max_delay_ms=max_delay_ms, n_slices=4,
                           slice_p=[0.4, 0.3, 0.2, 0.1], **kw)
    rng = np.random.default_rng(seed + 7)
    preds = pa.table({"event_id": p["id"].astype(str), "ts": p["time"],
                      "x": rng.normal(size=n), "channel": CHANNELS[p["slice"]],
                      "state": STATES[rng.choice(3, n, p=[0.5, 0.3, 0.2])],
                      "score": p["score"]})
    labels = pa.table({"event_id": l["id"].astype(str), "y": l["label"].astype(np.int64),
                       "known_at": l["time"]})
    return preds, labels


class Replay:
    """A reference profile and performance built once (``profile build --labels``), then
    :meth:`delay` per (max delay, seed)."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-labels-"))
        cfg = from_dict(config(self.tmp, WINDOW), base_dir=self.tmp, env={})
        preds, labels = tables(20_000, 1000, WINDOW)
        pq.write_table(preds, self.tmp / "train.parquet")
        self.profile = build_profile(cfg, self.tmp / "train.parquet", progress=False)
        save_profile(self.profile, cfg.reference.profile)
        reference_path(cfg.reference.profile).write_bytes(
            reference_sketch(cfg, self.profile, preds, labels).to_bytes())

    def delay(self, max_delay_ms: int, seed: int) -> float:
        """Windows from the onset to the first alert naming ``channel=app`` (inf: never)."""
        cfg = from_dict(config(self.tmp, max_delay_ms), base_dir=self.tmp, env={})
        n = int(EVENTS_PER_S * (ONSET + 3 * WINDOW) / 1000)
        preds, labels = tables(n, seed, max_delay_ms, degraded_slice=1, degrade_at_ms=ONSET)
        found: list[int] = []
        reference: dict = {}

        def on_step(t_ms, stage2, changed, cells, slices, groups):
            if found:
                return
            if "ref" not in reference:
                reference["ref"] = load_reference(cfg, cells, slices)
            for start in sorted(s for s in changed if s >= ONSET):
                rep = window_report(cfg, stage2.merged(start), cells, slices, groups,
                                    reference["ref"])
                if any(f["alert"] and f["slice"] == "channel=app" for f in rep["findings"]):
                    found.append(t_ms)
                    return

        join_files(cfg, self.profile, preds, labels, step_ms=STEP_MS, on_step=on_step)
        return (found[0] - ONSET) / WINDOW if found else float("inf")


def delays(max_delay_windows: list[float], seeds: int) -> dict[float, list[float]]:
    r = Replay()
    return {m: [r.delay(int(m * WINDOW), s) for s in range(seeds)] for m in max_delay_windows}
