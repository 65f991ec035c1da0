"""Model versions read from an event field (``model.version_field``): each version has its own
windows, reports and alert state; events without a usable version, and versions beyond
``model.max_versions``, are counted and left out; a partition's state carries its versions'
windows through a restart. Real replay path (decode, PartitionWindows, WindowAggregator,
Evaluator, AlertPolicy), exact counts computed here with numpy."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import jsonschema
import numpy as np
import pyarrow as pa
import pytest

from monitor.config import from_dict
from monitor.dev.synthetic import Scenario, Shift, generate
from monitor.dev.workload import build_reference, config_dict
from monitor.replay import ReplaySummary, replay
from monitor.sinks.trigger import TriggerPolicy
from monitor.stage1.versions import VersionReader
from monitor.stage2.evaluate import policy_from_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "window-report.schema.json").read_text())
START = 1_767_225_600_000
N = 36_000  # 2,000 events/s of event time: 6,000 per 3 s window, 6 windows


@pytest.fixture(scope="module")
def setup():
    tmp = Path(tempfile.mkdtemp())
    d = {**config_dict(tmp, "127.0.0.1:1", "t"), "model": {"name": "churn", "version": "v1"}}
    _, profile = build_reference(tmp, d, n=20_000)
    return tmp, d, profile


def _canary(versions=("v1", "v2")) -> pa.Table:
    """First half: every event is v1. Second half: events alternate between the versions;
    v2's events come from a stream whose income moved by 1.5 sd."""
    base = generate(Scenario(n_events=N, events_per_s=2_000, seed=5))
    drifted = generate(Scenario(n_events=N, events_per_s=2_000, seed=6,
                                shifts=(Shift("income", START, 1.5),)))
    k = np.arange(N) % len(versions)
    mv = np.where(np.arange(N) < N // 2, 0, k)
    cols = {}
    for name, col in base.items():
        if name.startswith("_"):
            continue
        col = col.copy()
        take = mv == 1
        col[take] = drifted[name][take]
        cols[name] = col
    cols["model_version"] = np.array(versions, dtype=object)[mv]
    return pa.table(cols)


def _cfg(tmp, d, **model):
    return from_dict({**d, "model": {**d["model"], **model}}, base_dir=tmp, env={})


def test_each_version_has_its_own_windows_reports_and_alerts(setup):
    tmp, d, profile = setup
    table = _canary()
    cfg = _cfg(tmp, d, version_field="model_version")
    reports = list(replay(cfg, profile, table))
    ts = table.column("ts").to_numpy()
    mv = np.array(table.column("model_version").to_pylist(), dtype=object)
    got = {(r.window_start_ms, r.model_version): r.events for r in reports}
    want = {}
    for s in np.unique(ts - ts % 3000).tolist():
        for v in ("v1", "v2"):
            n = int(np.sum((ts >= s) & (ts < s + 3000) & (mv == v)))
            if n:
                want[(s, v)] = n
    assert got == want and len({s for s, _ in got}) == 6
    for r in reports:
        jsonschema.validate(json.loads(json.dumps(r.to_dict())), SCHEMA)
        assert (r.model, r.model_key) == ("churn", f"churn:{r.model_version}")
    drift = {(r.window_start_ms, r.model_version): any(
        c.flagged for c in r.checks if c.feature == "income" and c.family == "numeric_drift")
        for r in reports}
    assert all(drift[k] for k in drift if k[1] == "v2") and not any(
        drift[k] for k in drift if k[1] == "v1")
    # alert state per version (v1's reports of the same windows are not ignored as "seen"):
    # v2 fires on its drift; v1 only on its volume, half of its traffic gone to v2 (v2's own
    # volume baseline starts empty, so it has no volume alert)
    policy = policy_from_config(cfg)
    alerts = [a for r in reports for a in policy.update(r).alerts]
    keys = {v: {i.key.split("/", 2)[2] for a in alerts if a.model_version == v
                for i in a.items} for v in ("v1", "v2")}
    assert keys["v1"] == {"volume_drop/*"} and {"ks/income", "psi/income"} <= keys["v2"]
    assert all(f"/churn:{a.model_version}/" in i.key for a in alerts for i in a.items)
    assert len({a.alert_id for a in alerts}) == len(alerts)
    # retraining triggers: keyed by the drifted version (v1's volume alert retrains nothing)
    tp = TriggerPolicy(on="warning", confirm_windows=1)
    triggers = [t for a in alerts if (t := tp.decide(a, model="churn")) is not None]
    assert triggers and {(t.topic_key, t.model_version) for t in triggers} == \
        {("churn:v2", "v2")}
    # the same file in other batch boundaries gives the same reports, byte for byte
    again = list(replay(cfg, profile, table, batch_rows=777))
    assert [r.to_dict() for r in again] == [r.to_dict() for r in reports]
    # without the field: one report per window, all under the config's version
    plain = list(replay(_cfg(tmp, d), profile, table))
    assert [(r.window_start_ms, r.model_version) for r in plain] == \
        [(s, "v1") for s in sorted({s for s, _ in got})]


def test_missing_and_unusable_versions_are_counted_and_left_out(setup):
    tmp, d, profile = setup
    table = _canary()
    mv = table.column("model_version").to_pylist()
    bad = {7: None, 100: "", 2_000: "a/b", 20_001: "x" * 101, 30_000: "tab\there"}
    for i, v in bad.items():
        mv[i] = v
    table = table.set_column(table.column_names.index("model_version"), "model_version",
                             pa.array(mv, pa.string()))
    summary = ReplaySummary()
    reports = list(replay(_cfg(tmp, d, version_field="model_version"), profile, table,
                          summary=summary))
    assert summary.bad == {"missing_model_version": 1, "bad_model_version": 4}
    assert sum(r.events for r in reports) == N - 5 == summary.events
    assert sum(r.bad_events for r in reports) == 5
    assert {r.model_version for r in reports} == {"v1", "v2"}
    # a column that is not strings: every event is bad_model_version, none is windowed
    ints = table.set_column(table.column_names.index("model_version"), "model_version",
                            pa.array(np.arange(N)))
    summary = ReplaySummary()
    assert sum(r.events for r in replay(_cfg(tmp, d, version_field="model_version"),
                                        profile, ints, summary=summary)) == 0
    assert summary.bad == {"bad_model_version": N}


def test_json_versions_are_read_in_one_pass_and_the_bad_path_goes_on():
    r = VersionReader("mv")
    vals = [b'{"mv": "v1", "a": [1, {"mv": "inner"}]}', b'{"a": 1}', b'{"mv": null}',
            b'{"mv": 3}', b'{"mv": "v2"}', b'{"mv": {"x": 1}}', b'{"mv": "v1"}']
    codes, names, bad = r.from_json(vals)
    assert [names[c] if c >= 0 else None for c in codes] == \
        ["v1", None, None, None, "v2", None, "v1"]
    assert bad == [(1, "missing_model_version"), (2, "missing_model_version"),
                   (3, "bad_model_version"), (5, "bad_model_version")]
    # one message msgspec refuses (NaN, which the decoder accepts): the others still read
    codes, names, bad = r.from_json([b'{"mv": "v3", "x": NaN}', b'{"mv": "v1"}'])
    assert [names[c] for c in codes] == ["v3", "v1"] and bad == []
    # the compiled scan and the message-by-message path agree, whatever the scan leaves
    vals = [b'{"mv": "v\\u00e9"}', '{"mv": "caf\u00e9"}'.encode(), b'{"mv": true}',
            b'{"mv": 1.5}', b'{"mv": [1]}', b'{"x": {"mv": "no"}}', b'{"mv": "a", "mv": "b"}',
            b'{"mv":"v1"}', b'{"mv": "tab\\there"}', b'{"mv": "-"}']
    for batch in (vals, vals[1:4], vals[7:]):
        codes, names, bad = r.from_json(batch)
        one = VersionReader.encode([r._read_one(v) for v in batch])
        assert ([names[c] if c >= 0 else None for c in codes], bad) == \
            ([one[1][c] if c >= 0 else None for c in one[0]], one[2])


@pytest.mark.parametrize("max_versions, refused", [(2, True), (3, False)])
def test_versions_beyond_max_versions_are_refused(setup, max_versions, refused):
    """Three versions live at once: with max_versions 2 the third one's events are all
    too_many_model_versions (the first two keep windows open throughout); with 3 none is."""
    tmp, d, profile = setup
    table = _canary(("v1", "v2", "v3"))
    n3 = int(np.sum(np.array(table.column("model_version").to_pylist()) == "v3"))
    summary = ReplaySummary()
    reports = list(replay(_cfg(tmp, d, version_field="model_version",
                               max_versions=max_versions), profile, table, summary=summary))
    versions = {r.model_version for r in reports}
    if refused:
        assert summary.bad == {"too_many_model_versions": n3} and versions == {"v1", "v2"}
        assert sum(r.bad_events for r in reports) == n3
    else:
        assert not summary.bad and versions == {"v1", "v2", "v3"}
    assert sum(r.events for r in reports) == N - (n3 if refused else 0)


def test_a_partition_restored_from_its_state_continues_every_versions_windows(setup):
    """Stage 1's exactly-once rests on the partition state: absorbing the canary stream in
    random batches, with the state serialized and restored at every cut (and a batch that
    re-sends events already absorbed), publishes the same partial messages, byte for byte,
    as one uninterrupted pass."""
    from monitor.stage1.decode import decoder_for
    from monitor.stage1.versions import VersionGate, partial_messages
    from monitor.stage1.windows import PartitionWindows
    from monitor.stages import window_parts

    tmp, d, profile = setup
    cfg = _cfg(tmp, d, version_field="model_version")
    parts = window_parts(cfg, profile)
    table = _canary(("v1", "v2", "v3"))
    offsets = np.arange(N, dtype=np.int64)
    gate = VersionGate("model_version", 4)
    w = cfg.windows

    def same(m) -> bytes:
        return dataclasses.replace(m, watermark_ms=0, next_offset=0).to_bytes()

    def run(cuts: list[int], restore: bool) -> list[bytes]:
        pw = PartitionWindows(0, w.size_ms, w.slide_ms, w.allowed_lateness_ms,
                              parts["new_sketch"], parts["new_dedup"]())
        out: list[bytes] = []
        lo = 0
        for hi in [*cuts, N]:
            if restore:
                pw = PartitionWindows.from_bytes(pw.to_bytes(), parts["new_sketch"],
                                                 parts["load_sketch"], parts["new_dedup"]())
            start = max(0, lo - 50) if restore else lo  # re-sent events are skipped
            rows = table.slice(start, hi - start)
            dec = decoder_for(cfg, profile).decode_table(rows, offsets=offsets[start:hi])
            dec, _, vers = gate.read(dec, rows, offsets[start:hi])
            sel = np.arange(dec.batch.n_events)
            assert not vers.admit(pw, sel)
            closed = pw.absorb(dec.batch.offset, dec.batch.event_time_ms, [],
                               vers.batch(dec.batch, sel))
            out += [same(m) for c in closed for m in partial_messages(
                c, monitor="m", partition=0, n_partitions=1, profile_id="p")]
            lo = hi
        out += [same(m) for c in pw.advance(2**62) for m in partial_messages(
            c, monitor="m", partition=0, n_partitions=1, profile_id="p")]
        return out

    whole = run([], False)
    assert len(whole) == 6 + 2 * 3  # 3 windows of v1 only, 3 of v1, v2 and v3
    rng = np.random.default_rng(3)
    assert run(sorted(rng.choice(np.arange(1, N), 9, replace=False).tolist()), True) == whole


def test_versions_side_by_side_keep_their_alerts_until_one_goes_quiet():
    """versions_coexist: v1 and v2 report the same windows and both fire; neither closes the
    other's alerts while both report. v1 then goes quiet: once it missed resolve_windows
    windows, its alert is resolved as superseded, naming v1; v2 goes on firing, unbroken."""
    from monitor.records import CheckResult, WindowReport
    from monitor.stage2.alerts import AlertPolicy

    def report(i: int, version: str) -> WindowReport:
        c = CheckResult(check="ks", family="numeric_drift", feature="f0", statistic=0.3,
                        p_value=1e-12, effect_size=0.3, n_window=5000, n_reference=50000,
                        sufficient=True)
        return WindowReport("m", i * 60_000, (i + 1) * 60_000, "p1", 5000, 0, 0, [0], {}, [c],
                            False, "0.1.0", model="churn", model_version=version)

    p = AlertPolicy(confirm_windows=2, resolve_windows=2, versions_coexist=True)
    seen = []
    for i in range(8):
        for v in (("v1", "v2") if i < 4 else ("v2",)):
            seen += [(i, a.kind, a.reason, a.model_version) for a in p.update(report(i, v)).alerts]
    assert seen == [(1, "firing", "new", "v1"), (1, "firing", "new", "v2"),
                    (6, "resolved", "superseded", "v1")]
    assert set(p.firing) == {"m/churn:v2/ks/f0"}
    # without versions_coexist the same reports flap: each version supersedes the other
    q = AlertPolicy(confirm_windows=2, resolve_windows=2)
    flaps = [a.reason for i in range(4) for v in ("v1", "v2")
             for a in q.update(report(i, v)).alerts]
    assert "new" not in flaps


def test_a_version_field_with_avro_input_is_refused_with_one_line(setup):
    """Not read from Avro yet: refused at start, naming the field and the way out."""
    from monitor.errors import ConfigError

    tmp, d, _ = setup
    avro = {**d, "stream": {**d["stream"], "format": "avro",
                            "schema_registry_url": "http://127.0.0.1:1"}}
    from_dict(avro, base_dir=tmp, env={})  # fine without the field
    with pytest.raises(ConfigError) as e:
        from_dict({**avro, "model": {"version_field": "model_version"}}, base_dir=tmp, env={})
    assert "model.version_field" in str(e.value) and "model.version" in str(e.value)
    assert "\n" not in str(e.value)
