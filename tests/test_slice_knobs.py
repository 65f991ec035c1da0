"""Each key of ``slices:`` changes what a window report says (tests/test_knobs.py names
these): ``keys`` which slices exist, ``top_k`` how many values of a key are slices of their
own, ``min_size`` which slices are judged, ``bins`` the bins the drift of a slice is measured
on. Without ``slices:`` no check is per slice and the sketch bytes are the plain ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.config import from_dict
from monitor.profile import build_profile, save_profile
from monitor.replay import replay
from monitor.stage2.slices import build_reference, write_reference
from tests.test_slice_drift import PER_WINDOW, config, rows, table


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    train = table([rows(rng, 20_000, 0, False)])
    live = table([rows(rng, PER_WINDOW, 1_000_000 + i * 10_000, True) for i in range(2)])
    return train, live


def first_report(tmp: Path, data, **slices):
    train, live = data
    d = config(tmp)
    if slices.get("keys") is None:
        d.pop("slices")
    else:
        d["slices"] = {**d["slices"], **slices}
    cfg = from_dict(d, base_dir=tmp, env={}, kafka=False)
    profile = build_profile(cfg, tmp / "train.parquet", table=train)
    save_profile(profile, cfg.reference.profile)
    if cfg.slices is not None:
        write_reference(cfg.reference.profile, profile, build_reference(cfg, profile, train))
    return next(iter(replay(cfg, profile, live)))


def sliced(rep):
    return {c.feature for c in rep.checks if "@" in c.feature}


def test_keys_choose_the_slices(tmp_path, data):
    none = first_report(tmp_path, data, keys=None)
    assert sliced(none) == set() and "slices" not in none.quality
    by_channel = first_report(tmp_path, data, keys=["channel"])
    by_state = first_report(tmp_path, data, keys=["state"])
    assert set(by_channel.quality["slices"]) == {"channel=web", "channel=app",
                                                 "channel=store", "channel=other"}
    assert set(by_state.quality["slices"]) == {"state=CA", "state=NY", "state=TX",
                                               "state=other"}
    assert "x@channel=store" in sliced(by_channel) and "x@state=CA" in sliced(by_state)


def test_top_k_sets_how_many_values_are_slices(tmp_path, data):
    one = first_report(tmp_path, data, keys=["channel"], top_k=1)
    assert list(one.quality["slices"]) == ["channel=web", "channel=other"]
    # app, store and kiosk all count in "other" now: 55 % of the window
    assert one.quality["slices"]["channel=other"]["events"] == pytest.approx(
        0.55 * PER_WINDOW, rel=0.1)
    three = first_report(tmp_path, data, keys=["channel"], top_k=3)
    assert three.quality["slices"]["channel=other"]["events"] == pytest.approx(
        0.1 * PER_WINDOW, rel=0.25)


def test_min_size_decides_which_slices_are_judged(tmp_path, data):
    low = first_report(tmp_path, data, keys=["channel"], min_size=100)
    high = first_report(tmp_path, data, keys=["channel"], min_size=1000)
    ev = low.quality["slices"]
    assert ev["channel=other"]["events"] < 1000 < ev["channel=web"]["events"]
    assert "x@channel=other" in sliced(low) and "x@channel=other" not in sliced(high)
    assert not high.quality["slices"]["channel=other"]["judged"]
    assert "x@channel=web" in sliced(high)


def test_bins_set_the_drift_bins_of_a_slice(tmp_path, data):
    def psi(rep):
        return next(c for c in rep.checks if c.feature == "x@channel=store")

    five = psi(first_report(tmp_path, data, keys=["channel"], bins=5))
    twenty = psi(first_report(tmp_path, data, keys=["channel"], bins=20))
    assert five.effect_size != twenty.effect_size and five.p_value != twenty.p_value
