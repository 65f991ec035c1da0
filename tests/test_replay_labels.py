"""`labels:` in the config, `profile build --labels` and `replay --labels`: per window and
per slice of each of two slice keys (channel, state) the counts equal the exact join of the
two files, the figures equal sklearn's (fairness: fairlearn's) on the joined rows, every
report names the model version, and a degradation confined to one slice alerts in that slice
only (named ``channel=app``), once its labels arrived."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from monitor.config import from_dict
from monitor.dev.labelled import labelled_stream
from monitor.errors import ConfigError
from tests.reference_performance import (FAIRNESS_ORACLES, PERFORMANCE_ORACLES, ece_numpy,
                                        rows_of)

WINDOW, MAX_DELAY = 10_000, 20_000
CHANNELS = np.array(["web", "app", "store", "kiosk"])
STATES = np.array(["CA", "NY", "TX", "WA"])  # by volume: the top 3 are CA, NY, TX
STATE_P = [0.4, 0.3, 0.2, 0.1]
AGES = np.array(["young", "old"])


def config(tmp) -> dict:
    return {
        "monitor": "churn-labels",
        "kafka": {"bootstrap": "127.0.0.1:9"},
        "stream": {"topic": "preds", "event_time": {"field": "ts", "unit": "ms"},
                   "event_id_field": "event_id"},
        "features": {"numeric": ["x"], "categorical": ["channel", "state"]},
        "prediction": {"score": "score", "threshold": 0.5},
        "windows": {"size": f"{WINDOW}ms", "allowed_lateness": "1s"},
        "reference": {"profile": str(tmp / "ref.profile")},
        "sensitive": {"attribute": "age", "min_group_events": 30},
        "model": {"name": "churn", "version": "v7"},
        "labels": {"topic": "outcomes", "id_field": "event_id", "label_field": "churned",
                   "event_time_field": "known_at", "max_delay": f"{MAX_DELAY}ms",
                   "min_labelled": 150, "slices": {"keys": ["channel", "state"],
                                                   "top_k": 3, "min_size": 150}},
    }


def files(tmp, name, seed, **kw):
    rng = np.random.default_rng(seed)
    p, l = labelled_stream(n=kw.pop("n", 8000), seed=seed, events_per_s=200,
                           max_delay_ms=MAX_DELAY, n_slices=4, slice_p=[0.4, 0.3, 0.2, 0.1],
                           **kw)  # web > app > store > kiosk: the profile's top 3 are fixed
    code = p["slice"]
    p["state"] = rng.choice(4, p["slice"].size, p=STATE_P)
    ids = np.array([f"e{int(i)}" for i in p["id"]])
    lab_ids = np.array([f"e{int(i)}" for i in l["id"]])
    preds = pa.table({"event_id": ids, "ts": p["time"], "x": rng.normal(size=ids.size),
                      "channel": CHANNELS[code], "state": STATES[p["state"]],
                      "age": AGES[p["group"]], "score": p["score"]})
    labels = pa.table({"event_id": lab_ids, "churned": l["label"].astype(np.int64),
                       "known_at": l["time"]})
    pq.write_table(preds, tmp / f"{name}.parquet")
    pq.write_table(labels, tmp / f"{name}-labels.parquet")
    return p


def cli(*args):
    r = subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labels")
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(config(tmp)))
    files(tmp, "train", 1, n=20_000)
    p = files(tmp, "live", 2, degraded_slice=1, degrade_at_ms=20_000)
    out = cli("profile", "build", "-c", str(tmp / "monitor.yaml"), "--input",
              str(tmp / "train.parquet"), "--labels", str(tmp / "train-labels.parquet"),
              "-o", str(tmp / "ref.profile"))
    assert "reference performance (20000 labelled rows)" in out
    cli("replay", "-c", str(tmp / "monitor.yaml"), "--input", str(tmp / "live.parquet"),
        "--reports", str(tmp / "reports.jsonl"), "--labels", str(tmp / "live-labels.parquet"))
    reports = [orjson.loads(x) for x in
               (tmp / "reports.jsonl.performance.jsonl").read_bytes().splitlines()]
    return p, reports, tmp


def test_counts_and_figures_equal_the_exact_join(replayed):
    p, reports, _ = replayed
    assert [r["window_start_ms"] for r in reports] == list(range(0, 40_000, WINDOW))
    assert list(reports[0]["slices"]) == ["channel=web", "channel=app", "channel=store",
                                          "channel=other", "state=CA", "state=NY",
                                          "state=TX", "state=other"]
    value = {"channel": CHANNELS[p["slice"]], "state": STATES[p["state"]]}
    other = {"channel": {"kiosk"}, "state": {"WA"}}
    fair_checked = 0
    for r in reports:
        assert r["model"] == {"name": "churn", "version": "v7"}
        assert r["revision"] >= 1 and r["slice_keys"] == ["channel", "state"]
        inw = (p["time"] >= r["window_start_ms"]) & (p["time"] < r["window_end_ms"])
        for name, got in [("*", r["overall"]), *r["slices"].items()]:
            m = inw.copy()
            if name != "*":
                key, v = name.split("=")
                m &= np.isin(value[key], list(other[key]) if v == "other" else [v])
            assert got["predictions"] == m.sum() and got["labelled"] == m.sum()
            assert got["label_completeness"] == 1.0
            y, s = p["label"][m], p["score"][m]
            pred = (s >= 0.5).astype(np.int8)
            for fig, (kind, oracle) in PERFORMANCE_ORACLES.items():
                want = oracle(*rows_of(kind, y, pred, s))
                if fig == "auc":
                    assert abs(got["auc"] - want) <= got["auc_error_bound"] + 1e-12
                elif not math.isnan(want):
                    assert got[fig] == pytest.approx(want, rel=1e-12), (name, fig)
            ece, *_ = ece_numpy(y, s, len(got["reliability"]))
            assert got["ece"] == pytest.approx(ece, rel=1e-12), name
            fair = r["fairness"] if name == "*" else got["fairness"]
            if "equalized_odds_difference" in fair:
                fair_checked += 1
                for fig, oracle in FAIRNESS_ORACLES.items():
                    want = oracle(y, pred, sensitive_features=AGES[p["group"][m]])
                    assert fair[fig] == pytest.approx(want, rel=1e-12), (name, fig)
    assert fair_checked >= 3 * len(reports)  # the whole window and most slices


def test_only_the_degraded_slice_alerts_and_alerts_name_it(replayed):
    _, reports, _ = replayed
    for r in reports:
        alerts = {(f["slice"], f["check"]) for f in r["findings"] if f["alert"]}
        if r["window_start_ms"] >= 20_000:
            assert ("channel=app", "accuracy_drop") in alerts, r["window_start_ms"]
            # the degraded rows are a quarter of every state's slice: some may show there
            assert {s for s, _ in alerts} <= {"channel=app", "*", "state=CA", "state=NY",
                                              "state=TX", "state=other"}
        else:
            assert alerts == set(), (r["window_start_ms"], alerts)
        flagged = {c["feature"] for c in r["checks"] if c["flagged"]}
        assert {c["family"] for c in r["checks"]} == {"performance"}
        assert flagged == {s for s, _ in alerts}
        assert all(c["detail"]["model"]["version"] == "v7" and c["detail"]["reliability"]
                   for c in r["checks"] if c["sufficient"])
        tested = [f for f in r["findings"] if f["p_value"] is not None]
        assert tested and all(f["budget"] == pytest.approx(0.01 / len(tested))
                              for f in tested)


def test_rows_in_any_order_give_the_same_reports(replayed):
    """Replay delivers each file in arrival order (event time, label time) whatever the order
    of its rows: shuffled files give the same counts and figures."""
    from monitor.pipeline import load_profile
    from monitor.replay_labels import performance_reports

    _, reports, tmp = replayed
    cfg = from_dict(config(tmp), base_dir=tmp, env={})
    rng = np.random.default_rng(5)
    preds = pq.read_table(tmp / "live.parquet")
    labels = pq.read_table(tmp / "live-labels.parquet")
    shuffled = performance_reports(cfg, load_profile(cfg),
                                   preds.take(rng.permutation(preds.num_rows)),
                                   labels.take(rng.permutation(labels.num_rows)))
    assert len(shuffled) == len(reports)
    for a, b in zip(shuffled, reports):
        for name in ["*", *b["slices"]]:
            x = a["overall"] if name == "*" else a["slices"][name]
            y = b["overall"] if name == "*" else b["slices"][name]
            for k in ("predictions", "labelled", "expired", "tp", "fp", "fn", "tn",
                      "accuracy", "log_loss", "ece"):
                assert x[k] == y[k], (a["window_start_ms"], name, k)


def test_bad_labels_config_names_the_field(tmp_path):
    d = config(tmp_path)
    d["labels"]["slices"]["keys"] = ["region"]
    with pytest.raises(ConfigError) as e:
        from_dict(d, base_dir=tmp_path, env={})
    assert "labels.slices.keys[0]" in str(e.value)
    d = config(tmp_path)
    del d["stream"]["event_id_field"]
    with pytest.raises(ConfigError) as e:
        from_dict(d, base_dir=tmp_path, env={})
    assert "stream.event_id_field" in str(e.value)
    d = config(tmp_path)
    d["labels"]["checks"] = {"floors": {"f2": 0.5}}
    with pytest.raises(ConfigError) as e:
        from_dict(d, base_dir=tmp_path, env={})
    assert "labels.checks.floors.f2" in str(e.value)
    cfg = from_dict(config(tmp_path), base_dir=tmp_path, env={})
    assert cfg.model.identity() == {"name": "churn", "version": "v7"}
    assert cfg.labels.max_delay_ms == MAX_DELAY and cfg.labels.slices.top_k == 3
