"""The effect of each ``labels:`` key on the performance reports of ``replay --labels``
(monitor/replay_labels.py ``performance_reports``), broker-free: the same two files judged
under two values of one key give different counts, figures, slices or findings.

One small labelled stream (tests/test_replay_labels.py's helpers): the model is good
everywhere except in slice ``channel=app`` from 20 s on. The reference performance is built
per config (its cells follow ``labels.slices`` and ``labels.n_bins``), the way ``profile build
--labels`` does, beside a per-variant copy of the reference profile.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitor.config import from_dict
from monitor.errors import StreamdriftError
from monitor.profile import build_profile
from monitor.replay_labels import performance_reports, reference_path, reference_sketch
from tests.test_replay_labels import config, files

_n = itertools.count()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("knob-labels")
    files(tmp, "train", 1, n=8000)
    files(tmp, "live", 2, n=6000, degraded_slice=1, degrade_at_ms=20_000)
    base = from_dict(config(tmp), base_dir=tmp, env={})
    profile = build_profile(base, tmp / "train.parquet")
    t = {name: pq.read_table(tmp / f"{name}.parquet")
         for name in ("train", "train-labels", "live", "live-labels")}
    return tmp, profile, t


def reports(world, d: dict, train_labels: pa.Table | None = None,
            live_labels: pa.Table | None = None) -> list[dict]:
    """``performance_reports`` under config ``d``, its reference built under ``d`` too."""
    tmp, profile, t = world
    d = copy.deepcopy(d)
    d["reference"]["profile"] = str(tmp / f"ref-{next(_n)}.profile")
    cfg = from_dict(d, base_dir=tmp, env={})
    sk = reference_sketch(cfg, profile, t["train"], t["train-labels"] if train_labels is None
                          else train_labels)
    reference_path(cfg.reference.profile).write_bytes(sk.to_bytes())
    return performance_reports(cfg, profile, t["live"], t["live-labels"] if live_labels is None
                               else live_labels)


def base(world) -> dict:
    return config(world[0])


def labelled(rs: list[dict]) -> int:
    return sum(r["overall"]["labelled"] for r in rs)


def alerts(rs: list[dict], check: str = "accuracy_drop") -> set[tuple[int, str]]:
    return {(r["window_start_ms"], f["slice"]) for r in rs for f in r["findings"]
            if f["alert"] and f["check"] == check}


def with_labels(d: dict, **kw) -> dict:
    d = copy.deepcopy(d)
    for k, v in kw.items():
        if "." in k:
            sec, key = k.split(".")
            d["labels"].setdefault(sec, {})[key] = v
        else:
            d["labels"][k] = v
    return d


def test_id_field_picks_the_column_labels_are_joined_by(world):
    """Two id columns in the labels file: the predictions' ids and ids of other events."""
    _, _, t = world
    extra = lambda tb: tb.append_column(  # noqa: E731
        "other_id", pa.array([f"x{i}" for i in tb.column("event_id").to_pylist()]))
    tl, ll = extra(t["train-labels"]), extra(t["live-labels"])
    good = reports(world, base(world), tl, ll)
    bad = reports(world, with_labels(base(world), id_field="other_id"), tl, ll)
    assert labelled(good) == sum(r["overall"]["predictions"] for r in good) > 0
    assert labelled(bad) == 0
    d = with_labels(base(world), id_field="eid")
    with pytest.raises(StreamdriftError, match="labels.id_field: the labels file has no "
                       "column 'eid'"):
        reports(world, d)


def test_label_field_picks_the_outcome_column(world):
    """Beside ``churned`` its negation ``stayed``: accuracy turns into its complement."""
    _, _, t = world
    neg = lambda tb: tb.append_column(  # noqa: E731
        "stayed", pa.array(1 - tb.column("churned").to_numpy()))
    tl, ll = neg(t["train-labels"]), neg(t["live-labels"])
    a = reports(world, base(world), tl, ll)
    b = reports(world, with_labels(base(world), label_field="stayed"), tl, ll)
    for x, y in zip(a, b):
        assert x["overall"]["accuracy"] > 0.55
        assert y["overall"]["accuracy"] == pytest.approx(1 - x["overall"]["accuracy"])


def test_event_time_field_decides_when_a_label_arrived(world):
    """``late_at`` is ``known_at`` + 60 s: far past max_delay (20 s), those labels mostly
    find their predictions expired (the first step's batch of labels joins before the
    label clock moves on)."""
    _, _, t = world
    late = lambda tb: tb.append_column(  # noqa: E731
        "late_at", pa.array(tb.column("known_at").to_numpy() + 60_000))
    tl, ll = late(t["train-labels"]), late(t["live-labels"])
    a = reports(world, base(world), tl, ll)
    b = reports(world, with_labels(base(world), event_time_field="late_at"), tl, ll)
    assert labelled(a) == sum(r["overall"]["predictions"] for r in a)
    assert labelled(b) < 0.2 * labelled(a)
    assert sum(r["overall"]["expired"] for r in b) == labelled(a) - labelled(b)


def test_max_delay_expires_labels_later_than_it(world):
    """Labels come 0..20 s after their prediction: 5 s of patience (checked at each 10 s
    step of replay) joins only part of them, the rest expire."""
    a = reports(world, base(world))
    b = reports(world, with_labels(base(world), max_delay="5s"))
    n = sum(r["overall"]["predictions"] for r in a)
    assert labelled(a) == n
    assert 0.2 * n < labelled(b) < 0.8 * n
    assert sum(r["overall"]["expired"] for r in b) == n - labelled(b)


def test_positive_label_names_the_positive_outcome(world):
    """String outcomes ``yes`` / ``no``: naming ``no`` positive flips every label."""
    _, _, t = world
    words = lambda tb: tb.set_column(  # noqa: E731
        tb.column_names.index("churned"), "churned",
        pa.array(np.where(tb.column("churned").to_numpy() == 1, "yes", "no")))
    tl, ll = words(t["train-labels"]), words(t["live-labels"])
    a = reports(world, with_labels(base(world), positive_label="yes"), tl, ll)
    b = reports(world, with_labels(base(world), positive_label="no"), tl, ll)
    for x, y in zip(a, b):
        assert x["overall"]["tp"] == y["overall"]["fp"] > 0
        assert x["overall"]["tn"] == y["overall"]["fn"] > 0


def test_min_labelled_holds_back_judgement(world):
    a = reports(world, with_labels(base(world), min_labelled=100))
    b = reports(world, with_labels(base(world), min_labelled=10**6))
    assert all(f["sufficient"] for r in a for f in r["findings"] if f["slice"] == "*")
    assert not any(f["sufficient"] or f["alert"] for r in b for f in r["findings"])
    assert alerts(a) and not alerts(b)


def test_n_bins_sets_the_auc_error_bound(world):
    a = reports(world, with_labels(base(world), n_bins=10))
    b = reports(world, with_labels(base(world), n_bins=400))
    for x, y in zip(a, b):
        assert x["overall"]["auc_error_bound"] > 5 * y["overall"]["auc_error_bound"]


def test_slice_keys_choose_the_slices(world):
    a = reports(world, with_labels(base(world), **{"slices.keys": ["channel"]}))
    b = reports(world, with_labels(base(world), **{"slices.keys": ["state"]}))
    assert list(a[0]["slices"]) == ["channel=web", "channel=app", "channel=store",
                                    "channel=other"]
    assert list(b[0]["slices"]) == ["state=CA", "state=NY", "state=TX", "state=other"]
    assert {s for _, s in alerts(a)} >= {"channel=app"}
    assert not {s for _, s in alerts(b)} & {"channel=app"}


def test_slice_top_k_sets_how_many_categories_stand_alone(world):
    a = reports(world, with_labels(base(world), **{"slices.top_k": 1}))
    b = reports(world, with_labels(base(world), **{"slices.top_k": 2}))
    assert list(a[0]["slices"]) == ["channel=web", "channel=other", "state=CA", "state=other"]
    assert list(b[0]["slices"]) == ["channel=web", "channel=app", "channel=other",
                                    "state=CA", "state=NY", "state=other"]
    # the degraded slice alerts under its own name only when it stands alone
    assert ("channel=app" in {s for _, s in alerts(b)}
            and "channel=app" not in {s for _, s in alerts(a)})


def test_slice_min_size_holds_back_slices_not_the_window(world):
    a = reports(world, with_labels(base(world), **{"slices.min_size": 100}))
    b = reports(world, with_labels(base(world), **{"slices.min_size": 10**6}))
    for rs, sliced in ((a, True), (b, False)):
        for r in rs:
            for f in r["findings"]:
                assert f["sufficient"] == (f["slice"] == "*" or sliced), (f["slice"], sliced)
    assert "channel=app" in {s for _, s in alerts(a)}
    assert not {s for _, s in alerts(b)} - {"*"}


def test_alpha_is_the_family_error_budget(world):
    a = reports(world, with_labels(base(world), **{"checks.alpha": 0.01}))
    b = reports(world, with_labels(base(world), **{"checks.alpha": 1e-300}))
    assert ("channel=app" in {s for _, s in alerts(a)}) and not alerts(b)
    tested = [f for r in b for f in r["findings"] if f["p_value"] is not None]
    assert tested and all(f["budget"] < 1e-300 for f in tested)


def test_max_drop_is_the_smallest_drop_that_alerts(world):
    """The degraded slice loses about a third of its accuracy: 0.05 alerts, 0.6 does not."""
    a = reports(world, with_labels(base(world), **{"checks.max_drop": 0.05}))
    b = reports(world, with_labels(base(world), **{"checks.max_drop": 0.6}))
    assert "channel=app" in {s for _, s in alerts(a)} and not alerts(b)


def test_floors_judge_a_figure_against_an_absolute_minimum(world):
    a = reports(world, base(world))
    b = reports(world, with_labels(base(world), **{"checks.floors": {"accuracy": 0.9}}))
    assert not any(f["check"].endswith("_floor") for r in a for f in r["findings"])
    floor = [f for r in b for f in r["findings"] if f["check"] == "accuracy_floor"]
    assert floor and all(f["reference"] == 0.9 and f["alert"] == (f["value"] < 0.9)
                         for f in floor)
    assert alerts(b, "accuracy_floor") >= {(r["window_start_ms"], "*") for r in b}
