"""Feature drift and data quality per slice (``slices:``), through ``profile build`` (the
per-slice reference beside the profile) and replay (the same stage 1 windows, partials merge
and evaluator as live):

- a shift of one numeric feature confined to one slice (``channel=store``) and a burst of
  nulls confined to another (``channel=other``) alert under those slices' names; the other
  slices, the second key's slices and every global check stay quiet, all under one
  false-alarm budget per window;
- each slice check equals a plain numpy / scipy computation on that slice's rows of the
  window and of the training file;
- the per-slice reference matters: the slices differ from each other in training, and
  compared with the global reference the steady slices would all flag.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from scipy.stats import binom, chi2_contingency

from monitor.config import from_dict
from monitor.replay import replay
from monitor.stage2.evaluate import policy_from_config

WINDOW = 10_000
CHANNELS = np.array(["web", "app", "store", "kiosk"])  # by volume; top 3 + other (kiosk)
CHANNEL_P = [0.45, 0.3, 0.15, 0.1]
CHANNEL_MEAN = np.array([0.0, 1.0, -1.0, 0.5])  # the slices differ in training already
STATES = np.array(["CA", "NY", "TX"])
DRIFT_FROM = 4  # window index
N_WINDOWS, PER_WINDOW = 9, 4000
#: what must flag from DRIFT_FROM on: the shift (x, and the score that follows it) in
#: channel=store, the nulls of y in channel=other
DRIFTED = {("psi", "x@channel=store"), ("psi", "score@channel=store"),
           ("null_rate", "y@channel=other")}


def config(tmp) -> dict:
    return {
        "monitor": "shop",
        "stream": {"event_time": {"field": "ts", "unit": "ms"}},
        "features": {"numeric": ["x", "y"], "categorical": ["channel", "state"]},
        "prediction": {"score": "score"},
        "windows": {"size": f"{WINDOW}ms", "allowed_lateness": "0ms", "min_events": 500},
        "reference": {"profile": str(tmp / "ref.profile")},
        "slices": {"keys": ["channel", "state"], "top_k": 3, "min_size": 300},
    }


def rows(rng, n, t0, drift: bool):
    ch = rng.choice(4, n, p=CHANNEL_P)
    x = rng.normal(CHANNEL_MEAN[ch], 1.0)
    y = rng.exponential(1.0 + 0.5 * ch)
    y_obj = y.astype(object)
    if drift:
        x = np.where(ch == 2, x + 0.35, x)                  # store: shifted
        y_obj[(ch == 3) & (rng.random(n) < 0.04)] = None    # other (kiosk): 4 % null
    score = 1.0 / (1.0 + np.exp(-(x + rng.normal(0.0, 0.5, n))))  # follows x
    return {"ts": t0 + np.sort(rng.integers(0, WINDOW, n)), "x": x, "y": y_obj, "score": score,
            "channel": CHANNELS[ch], "state": STATES[rng.choice(3, n, p=[0.5, 0.3, 0.2])]}


def table(parts) -> pa.Table:
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return pa.table({"ts": cols["ts"].astype(np.int64), "x": cols["x"].astype(float),
                     "score": cols["score"].astype(float),
                     "y": pa.array(list(cols["y"]), pa.float64()),
                     "channel": cols["channel"].astype(str), "state": cols["state"].astype(str)})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slices")
    rng = np.random.default_rng(7)
    d = config(tmp)
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(d))
    train = table([rows(rng, 40_000, 0, False)])
    pq.write_table(train, tmp / "train.parquet")
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "profile", "build", "-c",
                        str(tmp / "monitor.yaml"), "--input", str(tmp / "train.parquet"), "-o",
                        str(tmp / "ref.profile")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "reference per slice written" in r.stdout
    live = table([rows(rng, PER_WINDOW, 1_000_000 + i * WINDOW, i >= DRIFT_FROM)
                  for i in range(N_WINDOWS)])
    cfg = from_dict(d, base_dir=tmp, env={}, kafka=False)
    from monitor.stages import load_profile

    profile = load_profile(cfg)
    reports = list(replay(cfg, profile, live, batch_rows=1500))
    policy = policy_from_config(cfg)
    alerts = []
    for rep in reports:
        alerts += policy.update(rep).alerts
    return cfg, profile, train, live, reports, alerts


def test_only_the_drifted_slices_alert_and_alerts_name_them(run):
    _, _, _, _, reports, alerts = run
    assert len(reports) == N_WINDOWS
    for i, rep in enumerate(reports):
        flagged = {(c.check, c.feature) for c in rep.checks if c.flagged}
        if i >= DRIFT_FROM:
            assert flagged == DRIFTED, i
        else:
            assert flagged == set(), (i, flagged)
        section = rep.quality["slices"]
        assert section["channel=store"]["judged"] and section["channel=store"]["reference"] \
            == "slice"
    fired = [i for a in alerts if a.kind == "firing" for i in a.items]
    assert {(i.check, i.feature, i.detail["slice"]) for i in fired} == {
        (c, f, f.split("@")[1]) for c, f in DRIFTED}
    score = next(i for i in fired if i.feature == "score@channel=store")
    assert score.family == "prediction_drift"  # the score's own family


def test_one_budget_covers_every_slice_and_check_of_the_window(run):
    cfg, _, _, _, reports, _ = run
    policy = policy_from_config(cfg)
    for rep in reports:
        verdicts = policy.verdicts(rep)
        tested = [v for v in verdicts if v.level is not None]
        slice_tests = [v for v in tested if "@" in v.check.feature]
        assert slice_tests and len(tested) > len(slice_tests)  # global ones share it
        assert all(v.level == pytest.approx(0.01 / len(tested)) for v in tested)


def _deciles(profile, name, bins=10):
    e = profile.edges[profile.numeric_names.index(name)]
    return e[[len(e) // bins * j for j in range(1, bins)]]  # 1000 fine bins: exact deciles


def _psi_p(cw, cr):
    p, q = cw / cw.sum(), cr / cr.sum()
    pf, qf = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    t = np.vstack([cw, cr])
    t = t[:, t.sum(axis=0) > 0]
    return float(np.sum((pf - qf) * np.log(pf / qf))), chi2_contingency(t, correction=False)[1]


def test_slice_figures_equal_numpy_and_scipy_on_the_slice_rows(run):
    _, profile, train, live, reports, _ = run
    tr = {k: train.column(k).to_numpy(zero_copy_only=False) for k in train.column_names}
    lv = {k: live.column(k).to_numpy(zero_copy_only=False) for k in live.column_names}
    cuts = _deciles(profile, "x")
    checked = 0
    for rep in reports:
        by = {(c.check, c.feature): c for c in rep.checks}
        inw = (lv["ts"] >= rep.window_start_ms) & (lv["ts"] < rep.window_end_ms)
        for key, top in (("channel", ["web", "app", "store"]), ("state", ["CA", "NY", "TX"])):
            for v in [*top, "other"]:
                name = f"{key}={v}"
                sel_l = inw & (np.isin(lv[key], top, invert=True) if v == "other"
                               else lv[key] == v)
                sel_t = (np.isin(tr[key], top, invert=True) if v == "other" else tr[key] == v)
                if sel_l.sum() < 300:
                    assert ("psi", f"x@{name}") not in by
                    continue
                c = by["psi", f"x@{name}"]
                cw = np.bincount(np.searchsorted(cuts, lv["x"][sel_l], "right"), minlength=10)
                cr = np.bincount(np.searchsorted(cuts, tr["x"][sel_t], "right"), minlength=10)
                psi, p = _psi_p(cw, cr)
                assert c.effect_size == pytest.approx(psi, rel=1e-9, abs=1e-12)
                assert c.p_value == pytest.approx(p, rel=1e-6, abs=1e-300)
                assert c.n_window == sel_l.sum() and c.n_reference == sel_t.sum()
                y = lv["y"][sel_l]
                nulls = int(np.isnan(y.astype(float)).sum())
                q = by["null_rate", f"y@{name}"]
                ref_rate = np.isnan(tr["y"][sel_t].astype(float)).mean()
                assert q.statistic == pytest.approx(nulls / sel_l.sum())
                assert q.detail["count"] == nulls and q.detail["reference_rate"] == ref_rate
                want_p = 1.0 if nulls == 0 else binom.sf(nulls - 1, sel_l.sum(), ref_rate)
                assert q.p_value == pytest.approx(want_p, rel=1e-6, abs=1e-300)
                if key == "state":  # a slice key's own feature is not judged in its slices
                    cc = by["chi2", f"channel@{name}"]
                    codes = {c: i for i, c in enumerate(profile.categories["channel"][:9])}
                    cw = np.bincount([codes.get(s, 9) for s in lv["channel"][sel_l]],
                                     minlength=10)
                    cr = np.bincount([codes.get(s, 9) for s in tr["channel"][sel_t]],
                                     minlength=10)
                    t = np.vstack([cw, cr])
                    t = t[:, t.sum(axis=0) > 0]
                    stat, p = chi2_contingency(t, correction=False)[:2]
                    assert cc.statistic == pytest.approx(stat, rel=1e-9)
                    assert cc.p_value == pytest.approx(p, rel=1e-6, abs=1e-300)
                else:
                    assert ("chi2", f"channel@{name}") not in by
                checked += 1
    assert checked >= N_WINDOWS * 6


def test_global_reference_would_flag_the_steady_slices(run, tmp_path):
    """Without the per-slice reference (the file beside the profile removed) the slices are
    compared with the whole reference, say so, and the channels that differ from the whole
    in training flag from the first window: why ``profile build`` writes one."""
    cfg, profile, _, live, _, _ = run
    import shutil
    from dataclasses import replace

    prof = tmp_path / "ref.profile"
    shutil.copy(cfg.reference.profile, prof)
    cfg2 = replace(cfg, reference=replace(cfg.reference, profile=prof))
    first = next(iter(replay(cfg2, profile, live.slice(0, 2 * PER_WINDOW))))
    assert first.quality["slices"]["channel=app"]["reference"] == "global"
    flagged = {c.feature for c in first.checks if c.flagged}
    assert {"x@channel=app", "x@channel=store"} <= flagged


def test_a_per_slice_reference_of_other_slices_is_refused_in_one_line(run, tmp_path):
    """The profile's ``.slices`` file belongs to the slices it was built with: replay (like
    stage 2's start) with other slices stops on one line that says to rebuild."""
    cfg, _, _, live, _, _ = run
    d = config(cfg.reference.profile.parent)
    d["slices"]["top_k"] = 2
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(d))
    pq.write_table(live.slice(0, 100), tmp_path / "live.parquet")
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "replay", "-c", str(path),
                        "--input", str(tmp_path / "live.parquet"), "--reports",
                        str(tmp_path / "r.jsonl")], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "ref.profile.slices was built for another profile or other slices" in r.stderr
    assert "streamdrift profile build" in r.stderr
