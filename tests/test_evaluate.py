"""The evaluator over real kernels: fixed profile vs a rolling reference of healthy windows."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa

from monitor.config import from_dict
from monitor.replay import replay
from monitor.dev.synthetic import Scenario, Shift
from tests.e2e_harness import START_MS, WINDOW_MS, build_reference, config_dict


def _reports(rolling: int, shift_from_window: int = 0):
    tmp = Path(tempfile.mkdtemp())
    d = config_dict(tmp, "127.0.0.1:1", "t")
    _, profile = build_reference(tmp, d, n=50_000)
    d["reference"]["rolling_windows"] = rolling
    cfg = from_dict(d, base_dir=tmp, env={})
    from monitor.dev.synthetic import generate
    # the reference itself is off by 0.4 sd in "savings" for the whole stream: the fixed
    # profile flags every window; a rolling reference of the stream's own past does not
    onset = START_MS + shift_from_window * WINDOW_MS
    cols = generate(Scenario(n_events=48_000, events_per_s=2_000, seed=3,
                             shifts=(Shift("savings", onset, 0.4),)))
    t = pa.table({k: v for k, v in cols.items() if not k.startswith("_")})
    return [r for r in replay(cfg, profile, t)], profile


def test_fixed_profile_flags_a_stream_that_differs_from_training():
    reports, _ = _reports(0)
    assert all("savings" in {c.feature for c in r.flagged} for r in reports)


def test_rolling_reference_is_the_last_healthy_windows_and_reports_say_so():
    reports, profile = _reports(2, shift_from_window=4)
    ids = [r.profile_id for r in reports]
    assert ids[:2] == [profile.profile_id] * 2  # not yet 2 healthy windows: the profile
    start0 = reports[0].window_start_ms
    assert ids[2] == f"{profile.profile_id}+rolling:{start0}-{start0 + 2 * WINDOW_MS}"
    flagged = [{c.feature for c in r.flagged if c.family == "numeric_drift"} for r in reports]
    assert flagged[:4] == [set()] * 4 and all(f == {"savings"} for f in flagged[4:])
    # drifted windows never join the reference: it stays the last two healthy ones
    assert ids[-1] == f"{profile.profile_id}+rolling:{start0 + 2 * WINDOW_MS}-" \
                      f"{start0 + 4 * WINDOW_MS}"


def test_a_stream_that_differs_from_the_start_never_fills_the_rolling_reference():
    reports, profile = _reports(2)
    assert all(r.profile_id == profile.profile_id for r in reports)
