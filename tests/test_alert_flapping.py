"""No flapping: a key that resolves and goes bad again within ``alerts.reopen_windows``
windows stays one alert in one notification thread — no second ``firing``, no ``resolved``
then ``firing`` pair in between. The issue's case: a persistent fault near the detection
limit at ~800 events per window, judged by the real KS test (scipy), that flapped into
several separate firing notifications."""

from __future__ import annotations

import json

import numpy as np
from scipy import stats

from monitor.config import from_dict
from monitor.records import CheckResult, WindowReport
from monitor.stage2.alerts import AlertPolicy
from monitor.stage2.evaluate import policy_from_config

MIN = 60_000
N_WINDOW = 800
FAULT_WINDOWS, CLEAN_WINDOWS = 60, 20


def ks_reports(seed: int = 11) -> list[WindowReport]:
    """A persistent mean shift of 0.14 sd (flagged in ~65 % of the windows) for 60 windows
    of 800 events, then 20 clean windows: each window tested against a 20,000-event
    reference with scipy's two-sample KS."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=20_000)
    out = []
    for i in range(FAULT_WINDOWS + CLEAN_WINDOWS):
        x = rng.normal(0.14 if i < FAULT_WINDOWS else 0.0, 1.0, N_WINDOW)
        r = stats.ks_2samp(x, ref)
        c = CheckResult(check="ks", family="numeric_drift", feature="income",
                        statistic=float(r.statistic), p_value=float(r.pvalue),
                        effect_size=float(r.statistic), n_window=N_WINDOW, n_reference=ref.size,
                        sufficient=True)
        out.append(WindowReport("credit", i * MIN, (i + 1) * MIN, "p", N_WINDOW, 0, 0, [0], {},
                                [c], False, "0.1.0"))
    return out


def config(**alerts) -> dict:
    return {"monitor": "credit", "features": {"numeric": ["income"]},
            "windows": {"size": "1m"}, "reference": {"profile": "/r"},
            "alerts": alerts}


def notifications(policy: AlertPolicy, reports) -> list:
    return [a for r in reports for a in policy.update(r).alerts]


def test_the_fault_flaps_when_reopening_is_off():
    """The scenario is a flapping one: without the hold, the same fault pages again and
    again (here more than 3 separate firing notifications)."""
    policy = policy_from_config(from_dict(config(reopen_windows=0), env={}, kafka=False))
    sent = notifications(policy, ks_reports())
    firing = [a for a in sent if a.kind == "firing"]
    assert len(firing) > 3, [a.kind for a in sent]


def test_a_persistent_fault_is_one_alert_and_one_thread_by_default():
    cfg = from_dict(config(), env={}, kafka=False)
    assert cfg.alerts.reopen_windows == 3
    policy = policy_from_config(cfg)
    reports = ks_reports()
    sent = notifications(policy, reports)
    firing = [a for a in sent if a.kind == "firing"]
    resolved = [a for a in sent if a.kind == "resolved"]
    assert len(firing) == 1, [(a.kind, a.window_start_ms // MIN) for a in sent]
    thread = firing[0].alert_id
    assert all(a.thread_alert_id == thread for a in sent if a is not firing[0])
    # resolved once, after the fault ended: resolve_windows + reopen_windows clean windows
    assert len(resolved) == 1 and resolved[0].thread_resolved
    assert resolved[0].window_start_ms >= FAULT_WINDOWS * MIN


def test_reopen_windows_holds_the_resolution_and_reopens_the_thread():
    bad = dict(effect=0.3, p=1e-12)
    good = dict(effect=0.0, p=0.6)

    def rep(i, kind):
        c = CheckResult(check="ks", family="numeric_drift", feature="f0",
                        statistic=kind["effect"], p_value=kind["p"],
                        effect_size=kind["effect"], n_window=5000, n_reference=50_000,
                        sufficient=True)
        return WindowReport("m", i * MIN, (i + 1) * MIN, "p", 5000, 0, 0, [0], {}, [c],
                            False, "0.1.0")

    seq = [bad, good, bad, good, good, good, bad, good, good, good, good, good]
    out = []
    p = AlertPolicy(confirm_windows=1, resolve_windows=1, reopen_windows=2)
    for i, k in enumerate(seq):
        out.append([a.kind for a in p.update(rep(i, k)).alerts])
        if i == 5:  # a stage-2 restart in the hold: the state carries it
            p = AlertPolicy(confirm_windows=1, resolve_windows=1, reopen_windows=2).load_state(
                json.loads(json.dumps(p.state_to_dict())))
    # window 1 would resolve; window 2 is bad again within 2 windows: same alert, nothing
    # sent; windows 3-5 are healthy: resolve (1) + hold (2) -> resolved at 5; window 6 bad
    # again is after the resolution: a new firing; then resolved at 9
    assert out == [["firing"], [], [], [], [], ["resolved"], ["firing"], [], [], ["resolved"],
                   [], []]
    assert p.firing == {}
