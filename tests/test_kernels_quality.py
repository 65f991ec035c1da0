"""Quality sketch: exact interval and delay counts, the isolation forest against a Python walk
of its arrays and against scikit-learn, split / merge / bytes, bounds and the profile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels import ColumnBatch, ReferenceProfile, WindowSketch
from kernels.batch import MISSING, NULL, TYPE_ERROR
from kernels.forest import average_path
from kernels.quality import IsolationForest, QualityBounds, QualitySketch
from kernels.window import reference_batch
from monitor.profile import read_profile, save_profile
from tests import reference as ref
from tests.test_kernels_sketch import KINDS, make_batch, sample

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def dirty_state(rng: np.random.Generator, shape) -> np.ndarray:
    state = np.zeros(shape, np.int8)
    bad = rng.random(shape) < 0.05
    state[bad] = rng.choice([MISSING, NULL, TYPE_ERROR, 9], bad.sum())
    return state


def profile_of(columns: dict[str, np.ndarray], **kw) -> ReferenceProfile:
    return ReferenceProfile.build(numeric=columns, n_bins=20,
                                  metadata={"created_at": "2026-01-01T00:00:00+00:00"}, **kw)


# -- interval counts ---------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4), st.sampled_from(KINDS),
       st.integers(0, 2**31), st.sampled_from([0, 1, 2, 17, 1000, 3000]), st.booleans())
def test_interval_counts_are_exact(ref_kinds, win_kind, seed, n, configured):
    rng = np.random.default_rng(seed)
    cols = {f"f{i}": sample(k, 500, rng) for i, k in enumerate(ref_kinds)}
    p = profile_of(cols, n_trees=5)
    ranges = {"f0": (None, float(rng.normal()))} if configured else None
    bounds = QualityBounds.from_profile(p, ranges=ranges)
    x = np.array([sample(win_kind, n, rng) * rng.choice([1.0, 3.0]) for _ in cols]).reshape(
        len(cols), n)
    state = dirty_state(rng, x.shape)
    q = QualitySketch.empty(len(cols), bounds, p.forest).update_arrays(x, state)
    rc, out = ref.interval_counts(x, state, bounds.range_lo, bounds.range_hi, bounds.z_lo,
                                  bounds.z_hi)
    assert q.range_counts.tolist() == rc.tolist()
    assert q.outliers.tolist() == out.tolist()
    assert q.rows.tolist()[0] == n
    if configured:
        assert bounds.range_lo[0] == -np.inf


def test_float32_input_counts_like_its_float64_values():
    rng = np.random.default_rng(1)
    p = profile_of({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    x32 = (rng.normal(size=(2, 5000)) * 2.5).astype(np.float32)
    x32[0, :7] = np.nan
    x32[1, :3] = np.inf
    state = np.zeros(x32.shape, np.int8)
    b = p.default_bounds
    q = QualitySketch.empty(2, b, p.forest).update_arrays(x32, state)
    rc, out = ref.interval_counts(x32.astype(np.float64), state, b.range_lo, b.range_hi,
                                  b.z_lo, b.z_hi)
    assert q.range_counts.tolist() == rc.tolist() and q.outliers.tolist() == out.tolist()
    assert rc.sum() > 0 and out.sum() > 0


def test_bad_values_are_never_range_violations_or_outliers():
    p = profile_of({"a": np.random.default_rng(2).normal(size=1000)})
    x = np.array([[np.nan, np.inf, -np.inf, 1e300, -1e300, 1e300]])
    state = np.array([[0, 0, 0, MISSING, NULL, TYPE_ERROR]], np.int8)
    q = QualitySketch.empty(1, p.default_bounds, p.forest).update_arrays(x, state)
    assert q.range_counts.tolist() == [[0, 0]] and q.outliers.tolist() == [0]
    assert q.rows.tolist()[0] == 6  # the rows are still scored, bad values as the median


def test_huge_offsets_and_constant_columns():
    rng = np.random.default_rng(3)
    cols = {"off": 1e9 + rng.normal(0, 1e-3, 5000), "const": np.full(5000, 7.25),
            "sparse": np.where(rng.random(5000) < 0.8, 0.0, rng.exponential(size=5000))}
    p = profile_of(cols)
    b = p.default_bounds
    # constant: only values visibly off 7.25 are outliers; its own value never is
    assert b.z_lo[1] < 7.25 < b.z_hi[1] and b.z_hi[1] - 7.25 < 1e-6
    # MAD = 0 but a spread: the quantile-spread scale, not a hair-trigger
    assert b.z_hi[2] > cols["sparse"].max() / 2
    x = np.array([1e9 + np.array([0.0, 1e-2, -1e-2, 1.0]), [7.25, 7.25, 7.25 + 1e-3, 7.0],
                  [0.0, 0.5, 100.0, 0.0]])
    q = QualitySketch.empty(3, b, p.forest).update_arrays(x, np.zeros(x.shape, np.int8))
    rc, out = ref.interval_counts(x, np.zeros(x.shape), b.range_lo, b.range_hi, b.z_lo, b.z_hi)
    assert q.outliers.tolist() == out.tolist() == [3, 2, 1]
    assert q.range_counts.tolist() == rc.tolist()


def test_no_finite_reference_values_means_no_bounds():
    p = profile_of({"a": np.full(100, np.nan), "b": np.arange(100.0)})
    b = p.default_bounds
    assert b.range_lo[0] == -np.inf and b.range_hi[0] == np.inf
    assert b.z_lo[0] == -np.inf and b.z_hi[0] == np.inf
    assert np.isnan(p.quality_stats[0]).all() and p.forest.medians[0] == 0.0


# -- bounds ------------------------------------------------------------------------------------

def test_bounds_learned_and_configured():
    rng = np.random.default_rng(4)
    a, c = rng.normal(size=10_000), rng.lognormal(size=10_000)
    p = profile_of({"a": a, "c": c}, outlier_z=4.0, range_margin=0.5)
    q0, q1 = np.quantile(a, [0.001, 0.999])
    med = np.median(a)
    mad = np.median(np.abs(a - med))
    b = QualityBounds.from_profile(p)
    assert b.range_lo[0] == q0 - 0.5 * (q1 - q0) and b.range_hi[0] == q1 + 0.5 * (q1 - q0)
    assert b.z_lo[0] == med - 4.0 * 1.4826 * mad and b.z_hi[0] == med + 4.0 * 1.4826 * mad
    assert p.quality_stats[0].tolist() == [q0, q1, med, mad]
    cfg = QualityBounds.from_profile(p, ranges={"c": (0, None), "a": (None, 2.0)},
                                     max_delay_ms=5000)
    assert cfg.range_lo.tolist() == [-np.inf, 0.0] and cfg.range_hi.tolist() == [2.0, np.inf]
    assert cfg.z_lo.tolist() == b.z_lo.tolist() and cfg.max_delay_ms == 5000
    # two workers from the same profile bytes and config agree
    p2 = ReferenceProfile.from_bytes(p.to_bytes())
    assert QualityBounds.from_profile(p2, ranges={"a": (None, 2.0), "c": (0, None)},
                                      max_delay_ms=5000) == cfg
    assert hash(QualityBounds.from_profile(p2)) == hash(b) and b != cfg
    with pytest.raises(ValueError, match="'zz'"):
        QualityBounds.from_profile(p, ranges={"zz": (0, 1)})
    with pytest.raises(ValueError, match="above"):
        QualityBounds.from_profile(p, ranges={"a": (2, 1)})
    with pytest.raises(ValueError):
        b.range_lo[0] = 0.0  # frozen
    with pytest.raises(ValueError, match="quality bounds"):
        WindowSketch.empty(p, QualityBounds(("x", "y"), *b.to_arrays()[:4]))


# -- isolation forest --------------------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 2**31), st.sampled_from([2, 3, 50, 700]), st.integers(1, 4),
       st.sampled_from([0, 1, 255, 600]))
def test_forest_scores_equal_a_python_walk_of_its_arrays(seed, n_ref, n_feat, n):
    rng = np.random.default_rng(seed)
    X = np.column_stack([sample(k, n_ref, rng) for k in rng.choice(KINDS, n_feat)])
    f = IsolationForest.fit(X, n_trees=7, sample_size=int(rng.choice([2, 16, 256])),
                            seed=seed)
    x = np.array([sample(k, n, rng) * 2 for k in rng.choice(KINDS, n_feat)]).reshape(n_feat, n)
    state = dirty_state(rng, x.shape)
    got = f.score(x, state)
    want = ref.forest_scores(f.split_feature.tolist(), f.split_value.tolist(),
                             f.leaf_path.tolist(), f.medians.tolist(), f.sample_size,
                             x.tolist(), state.tolist())
    assert np.allclose(got, want, rtol=0, atol=1e-12)
    assert f.count_outliers(x, state) == int((np.array(want) > f.threshold).sum())
    assert ((got > 0) & (got <= 1)).all()


def test_forest_fit_is_deterministic_and_seeded():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 6))
    X[::50, 2] = np.nan
    a = IsolationForest.fit(X, seed=11)
    assert a.to_bytes() == IsolationForest.fit(X.copy(), seed=11).to_bytes()
    assert a.to_bytes() != IsolationForest.fit(X, seed=12).to_bytes()
    assert a.split_feature.shape == (25, 255) and a.leaf_path.shape == (25, 256)
    assert a.depth == 8 and a.sample_size == 256
    b = IsolationForest.from_bytes(a.to_bytes())
    assert b.to_bytes() == a.to_bytes() and b.threshold == a.threshold
    x = np.ascontiguousarray(X[:500].T)
    assert a.score(x).tobytes() == b.score(x).tobytes()


def test_forest_on_identical_rows_flags_nothing():
    X = np.tile([[1.0, 2.0, 3.0]], (500, 1))
    f = IsolationForest.fit(X, n_trees=5)
    assert (f.leaf_path == 0 + average_path(256)).all() and f.threshold == 0.5
    assert f.count_outliers(np.array([[1.0, 50.0], [2.0, 2.0], [3.0, -9.0]])) == 0
    with pytest.raises(ValueError, match="at least 2"):
        IsolationForest.fit(X[:1])
    with pytest.raises(ValueError, match="contamination"):
        IsolationForest.fit(X, contamination=0.0)


def auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def planted(rng, n: int, n_feat: int, how: str) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, n_feat))
    y = np.zeros(n, bool)
    idx = rng.choice(n, n // 100, replace=False)
    y[idx] = True
    if how == "one x1000":
        x[idx, rng.integers(0, n_feat, idx.size)] *= 1000
    elif how == "one +8sd":
        x[idx, rng.integers(0, n_feat, idx.size)] += 8
    else:  # "all +8sd": the whole row is off
        x[idx] += 8 * rng.choice([-1, 1], (idx.size, n_feat))
    return x, y


@pytest.mark.parametrize("how", ["one x1000", "one +8sd", "all +8sd"])
def test_planted_outliers_as_well_as_sklearn(how):
    from sklearn.ensemble import IsolationForest as SkForest

    rng = np.random.default_rng(7)
    ours, theirs = [], []
    for seed in range(3):
        X = rng.normal(size=(20_000, 10))
        f = IsolationForest.fit(X, seed=seed)
        sk = SkForest(n_estimators=50, max_samples=256, random_state=seed).fit(X)
        x, y = planted(rng, 20_000, 10, how)
        s = f.score(np.ascontiguousarray(x.T))
        ours.append(auc(y, s))
        theirs.append(auc(y, -sk.score_samples(x)))
        flagged = s > f.threshold
        if how == "all +8sd":
            assert flagged[y].mean() > 0.95 and flagged[~y].mean() < 0.005
    assert np.mean(ours) >= np.mean(theirs) - 0.02, (ours, theirs)
    assert np.mean(ours) > 0.75


def test_fresh_reference_like_data_flags_about_contamination():
    rng = np.random.default_rng(8)
    n_ref, n = 100_000, 200_000
    X = rng.normal(size=(n_ref, 8))
    for c in (0.001, 0.01):
        f = IsolationForest.fit(X, contamination=c, seed=3)
        rate = f.count_outliers(rng.normal(size=(8, n))) / n
        tol = 4 * np.sqrt(c * (1 - c) * (1 / n + 1 / n_ref))
        assert abs(rate - c) <= tol, (c, rate, tol)


# -- delay -------------------------------------------------------------------------------------

def timed_batch(rng, n: int, n_feat: int = 3, ingest: bool = True) -> ColumnBatch:
    b = make_batch(rng, n) if n_feat == 3 else None
    et = rng.integers(1_700_000_000_000, 1_700_000_100_000, n)
    lag = rng.integers(-2000, 20_000, n)
    ing = et + lag
    et[rng.random(n) < 0.03] = -1
    ing[rng.random(n) < 0.03] = -1
    return ColumnBatch(**{**b.__dict__, "event_time_ms": et.astype(np.int64),
                          "ingest_time_ms": ing.astype(np.int64) if ingest else None})


@pytest.mark.parametrize("max_delay", [0, 5000])
def test_delay_counts_are_exact(max_delay):
    rng = np.random.default_rng(9)
    p = PROFILE
    bounds = QualityBounds.from_profile(p, max_delay_ms=max_delay)
    b = timed_batch(rng, 4000)
    q = QualitySketch.empty(3, bounds, p.forest).update(b)
    want = ref.delay_counts(b.event_time_ms.tolist(), b.ingest_time_ms.tolist(), max_delay)
    assert q.delay.tolist() == want
    assert (want[1] > 0) == (max_delay > 0)
    # without ingest times there is nothing to count
    q2 = QualitySketch.empty(3, bounds, p.forest).update(timed_batch(rng, 100, ingest=False))
    assert q2.delay.tolist() == [0, 0, 0, 0] and q2.rows.tolist()[0] == 100


def test_delay_sum_saturates_in_any_order():
    p = PROFILE
    bounds = p.default_bounds
    big = np.full(3, 2**62, np.int64)
    b = ColumnBatch(**{**make_batch(np.random.default_rng(0), 3).__dict__,
                       "event_time_ms": np.zeros(3, np.int64), "ingest_time_ms": big})
    one = QualitySketch.empty(3, bounds, None).update(b)
    assert one.delay.tolist() == [3, 0, 2**63 - 1, 2**62]
    parts = [QualitySketch.empty(3, bounds, None).update(b.take([i])) for i in range(3)]
    assert parts[0].merge(parts[1]).merge(parts[2]).to_bytes() == one.to_bytes()


# -- split / merge / bytes ---------------------------------------------------------------------

def raw_reference(n: int = 3000) -> dict:
    rng = np.random.default_rng(0)
    return {"numeric": {"a": rng.normal(size=n), "b": rng.lognormal(size=n),
                        "c": 1e9 + rng.random(n)},
            "categorical": {"k": rng.choice(["x", "y", "z"], n).astype(object)},
            "score": rng.random(n), "prediction": rng.integers(0, 2, n).astype(np.int8),
            "label": rng.integers(0, 2, n).astype(np.int8),
            "group": rng.choice(["g0", "g1", "g2"], n).astype(object)}


RAW = raw_reference()
#: the shape of tests.test_kernels_sketch's profile (so its make_batch fits), 10 trees
PROFILE = ReferenceProfile.build(**RAW, n_bins=50, top_k=4, n_trees=10,
                                 metadata={"created_at": "2026-01-01T00:00:00+00:00"})


@SETTINGS
@given(st.integers(0, 2**31), st.integers(0, 700), st.lists(st.floats(0, 1), max_size=6))
def test_any_split_any_merge_order_same_bytes(seed, n, cuts):
    rng = np.random.default_rng(seed)
    b = timed_batch(rng, n)
    bounds = QualityBounds.from_profile(PROFILE, ranges={"a": (-1.0, 1.0)}, max_delay_ms=9000)
    whole = WindowSketch.empty(PROFILE, bounds).update(b)
    edges = sorted({0, n, *(int(c * n) for c in cuts)})
    perm = rng.permutation(n)
    parts = [WindowSketch.empty(PROFILE, bounds).update(b.take(np.sort(perm[lo:hi])))
             for lo, hi in zip(edges[:-1], edges[1:])]
    merged = WindowSketch.empty(PROFILE, bounds)
    for i in rng.permutation(len(parts)):
        merged = merged.merge(parts[i])
    assert merged.to_bytes() == whole.to_bytes()
    qb = whole.quality.to_bytes()
    assert QualitySketch.from_bytes(qb, bounds, PROFILE.forest).to_bytes() == qb
    back = WindowSketch.from_bytes(whole.to_bytes(), PROFILE, bounds)
    assert back.to_bytes() == whole.to_bytes() and back.quality.bounds == bounds
    # the summary is the exact count from the events
    s = whole.quality_summary()
    rc, out = ref.interval_counts(b.numeric, b.numeric_state, bounds.range_lo,
                                  bounds.range_hi, bounds.z_lo, bounds.z_hi)
    assert s["out_of_range_below"] == dict(zip("abc", rc[:, 0].tolist()))
    assert s["out_of_range_above"] == dict(zip("abc", rc[:, 1].tolist()))
    assert s["out_of_range"] == dict(zip("abc", rc.sum(1).tolist()))
    assert s["outliers"] == dict(zip("abc", out.tolist()))
    scores = PROFILE.forest.score(b.numeric, b.numeric_state)
    assert s["rows_scored"] == n and s["row_outliers"] == int(
        (scores > PROFILE.forest.threshold).sum())
    d = ref.delay_counts(b.event_time_ms.tolist(), b.ingest_time_ms.tolist(), 9000)
    assert list(s["delay"].values()) == d and list(s["delay"]) == ["events", "stale",
                                                                   "sum_ms", "max_ms"]
    assert all(type(v) is int for k in ("outliers", "out_of_range") for v in s[k].values())


def test_quality_sketch_bytes_checked_and_bounded():
    q = QualitySketch.empty(3, PROFILE.default_bounds, PROFILE.forest)
    size = len(q.to_bytes())
    q.update(timed_batch(np.random.default_rng(3), 5000))
    assert len(q.to_bytes()) == size
    other = profile_of({"x": np.arange(10.0)})
    with pytest.raises(ValueError):
        QualitySketch.from_bytes(q.to_bytes(), other.default_bounds, other.forest)
    with pytest.raises(ValueError):
        QualitySketch.empty(2, PROFILE.default_bounds, None)


def test_empty_and_single_event_batches():
    s = WindowSketch.empty(PROFILE)
    s.update(ColumnBatch.empty(3, 1))
    assert s.quality.to_bytes() == WindowSketch.empty(PROFILE).quality.to_bytes()
    one = timed_batch(np.random.default_rng(4), 1)
    s.update(one)
    assert s.quality.rows.tolist()[0] == 1 and s.quality_summary()["rows_scored"] == 1


# -- profile -----------------------------------------------------------------------------------

def test_profile_round_trip_with_quality_fields(tmp_path):
    p = PROFILE
    save_profile(p, tmp_path / "p.bin")
    q = read_profile(tmp_path / "p.bin")
    assert q.to_bytes() == p.to_bytes() and q.head["format"] == 3
    assert q.quality_settings == {"outlier_z": 6.0, "range_margin": 0.1, "n_trees": 10,
                                  "sample_size": 256, "contamination": 0.001, "seed": 0}
    assert q.quality_stats.tobytes() == p.quality_stats.tobytes()
    assert q.quality_stats.shape == (3, 4)
    assert q.forest.to_bytes() == p.forest.to_bytes() and q.forest.n_trees == 10
    assert q.default_bounds == p.default_bounds
    # the reference's own quality counters, against the default bounds
    s = q.reference.quality_summary()
    assert s["rows_scored"] == 3000 and s["row_outliers"] <= 3
    rb = reference_batch(p, *RAW.values())
    rc, out = ref.interval_counts(rb.numeric, rb.numeric_state,
                                  *p.default_bounds.to_arrays()[:4])
    assert s["outliers"] == dict(zip("abc", out.tolist()))
    assert s["out_of_range"] == dict(zip("abc", rc.sum(1).tolist()))
    assert rc.sum() <= 0.002 * 3 * 3000  # the margin keeps most of the reference in range
    assert s["row_outliers"] == int((p.forest.score(rb.numeric) > p.forest.threshold).sum())


def test_profile_without_numeric_features_has_no_forest():
    p = ReferenceProfile.build(numeric={}, categorical={"k": np.array(["a", "b"] * 50, object)},
                               n_bins=10)
    assert p.forest is None and p.quality_stats.shape == (0, 4)
    assert ReferenceProfile.from_bytes(p.to_bytes()).forest is None
    w = WindowSketch.empty(p).update(reference_batch(p, {}, {"k": np.array(["a"] * 5, object)},
                                                     None, None, None, None))
    assert w.quality_summary()["rows_scored"] == 0 and w.quality_summary()["outliers"] == {}


def test_older_profile_format_is_refused_with_advice():
    import orjson

    from kernels.serial import pack_arrays, unpack_arrays

    arrays = unpack_arrays(PROFILE.to_bytes())
    head = orjson.loads(arrays[0].tobytes())
    head["format"] = 2
    old = pack_arrays([np.frombuffer(orjson.dumps(head), np.uint8), *arrays[1:4]])
    with pytest.raises(ValueError, match="rebuild"):
        ReferenceProfile.from_bytes(old)


def test_a_batch_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="profile has 3 / 1"):
        WindowSketch.empty(PROFILE).update(ColumnBatch.empty(2, 1))


def test_batch_carries_the_new_columns():
    b = timed_batch(np.random.default_rng(5), 10)
    b = ColumnBatch(**{**b.__dict__, "event_id_hash": np.arange(10, dtype=np.uint64)})
    t = b.take(np.array([3, 1]))
    assert t.ingest_time_ms.tolist() == b.ingest_time_ms[[3, 1]].tolist()
    assert t.event_id_hash.tolist() == [3, 1]
    plain = ColumnBatch(**{**make_batch(np.random.default_rng(6), 4).__dict__,
                           "ingest_time_ms": None})
    assert plain.ingest_time_ms is None and plain.take([0]).event_id_hash is None
    e = ColumnBatch.empty(2, 1)
    assert e.ingest_time_ms.shape == (0,) and e.event_id_hash.dtype == np.uint64


def print_added_cost(n_features: int = 20, batch: int = 10_000, batches: int = 20) -> None:
    """Per-event cost of the quality counters beside the rest of ``WindowSketch.update``
    (prints, asserts nothing): ``.venv/bin/python -m tests.test_kernels_quality``."""
    import time

    rng = np.random.default_rng(0)
    n = 100_000
    cols = {f"x{f}": rng.normal(size=n) if f % 2 == 0 else rng.lognormal(0, 2.0, n)
            for f in range(n_features)}
    p = ReferenceProfile.build(cols)

    def one(m: int) -> ColumnBatch:
        v = np.array([rng.normal(0.05, 1, m) if f % 2 == 0 else rng.lognormal(0.05, 2.0, m)
                      for f in range(n_features)])
        v[rng.random(v.shape) < 0.001] = np.nan
        t = np.arange(m, dtype=np.int64)
        return ColumnBatch(
            numeric=v, numeric_state=np.zeros(v.shape, np.int8),
            categorical=np.zeros((0, m), np.int32), unseen_hash=np.zeros((0, m), np.uint64),
            score=rng.random(m), prediction=np.zeros(m, np.int8), label=np.zeros(m, np.int8),
            group=np.full(m, -1, np.int32), event_time_ms=t, offset=t,
            ingest_time_ms=t + rng.integers(0, 3000, m))

    data = [one(batch) for _ in range(batches)]
    total = batch * batches

    def best_ns(fn) -> float:
        fn()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times) / total * 1e9

    def with_quality():
        s = WindowSketch.empty(p)
        for b in data:
            s.update(b)

    def without_quality():
        s = WindowSketch.empty(p)
        for b in data:
            s.numeric.update(b.numeric, b.numeric_state)
            sc = b.score.reshape(1, -1)
            s.score.update(sc, np.isnan(sc).view(np.int8))
            s.categorical.update(b.categorical, b.unseen_hash)
            s.groups.update(b.group, b.prediction, b.label)

    def counters_only():
        q = QualitySketch.empty(n_features, p.default_bounds, None)
        for b in data:
            q.update(b)

    def forest_only():
        for b in data:
            p.forest.count_outliers(b.numeric, b.numeric_state)

    w, wo = best_ns(with_quality), best_ns(without_quality)
    print(f"{n_features} numeric features, {batches} batches of {batch:,} events, "
          f"{p.forest.n_trees} trees of depth {p.forest.depth}:")
    print(f"  WindowSketch.update with quality     {w:8.1f} ns/event")
    print(f"  WindowSketch.update without quality  {wo:8.1f} ns/event")
    print(f"  added by quality                     {w - wo:8.1f} ns/event")
    print(f"    range + robust z + delay counters  {best_ns(counters_only):8.1f} ns/event")
    print(f"    isolation forest                   {best_ns(forest_only):8.1f} ns/event")


if __name__ == "__main__":
    print_added_cost()
