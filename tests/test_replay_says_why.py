"""``streamdrift replay`` reads files: it needs no Kafka settings, and when it writes no window
it says why in one line and exits non-zero (an empty input, no event-time field, every event
bad with the top reasons, event times that do not fit the configured unit)."""

from __future__ import annotations

import copy

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitor.cli import main
from monitor.dev.synthetic import Scenario, generate
from tests.e2e_harness import START_MS, build_reference, config_dict, write_config


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    d = config_dict(tmp, "127.0.0.1:1", "t")
    build_reference(tmp, d, n=20_000)
    cols = generate(Scenario(n_events=6_000, events_per_s=1_000, seed=3, start_ms=START_MS))
    table = pa.table({k: v for k, v in cols.items() if not k.startswith("_")})
    return tmp, d, table


def _replay(tmp, d, table, capsys):
    cfg = write_config(tmp, d)
    pq.write_table(table, tmp / "in.parquet")
    rc = main(["replay", "-c", str(cfg), "--input", str(tmp / "in.parquet"),
               "--reports", str(tmp / "out.jsonl")])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_replay_needs_no_kafka_settings(ref, tmp_path, capsys):
    tmp, d, table = ref
    d = copy.deepcopy(d)
    del d["kafka"]
    del d["stream"]["topic"]
    rc, out, err = _replay(tmp, d, table, capsys)
    assert rc == 0, err
    assert "window reports written" in out
    assert (tmp / "out.jsonl").read_text().count("\n") >= 2


def test_run_still_names_the_missing_kafka_settings(ref, capsys):
    tmp, d, _ = ref
    d = copy.deepcopy(d)
    del d["kafka"]["bootstrap"]
    rc = main(["run", "-c", str(write_config(tmp, d))])
    err = capsys.readouterr().err
    assert rc == 2
    assert _one_line(err).startswith("streamdrift: kafka.bootstrap: required field is missing")


def test_an_empty_input_says_so(ref, capsys):
    tmp, d, table = ref
    rc, out, err = _replay(tmp, d, table.slice(0, 0), capsys)
    assert rc != 0
    assert "the input has no rows" in _one_line(err)


def test_no_event_time_field_names_the_field_and_the_columns(ref, capsys):
    tmp, d, table = ref
    rc, out, err = _replay(tmp, d, table.rename_columns(
        ["when" if c == "ts" else c for c in table.column_names]), capsys)
    line = _one_line(err)
    assert rc != 0
    assert "stream.event_time.field" in line and "'ts'" in line and "when" in line, line


def test_every_event_bad_gives_the_top_reasons(ref, capsys):
    tmp, d, table = ref
    bad = table.set_column(table.column_names.index("ts"), "ts",
                           pa.array(["not a time"] * table.num_rows))
    rc, out, err = _replay(tmp, d, bad, capsys)
    line = _one_line(err)
    assert rc != 0
    assert "all 6000 events were bad" in line and "bad_event_time 6000" in line, line


@pytest.mark.parametrize("unit, scale, want", [
    ("ms", 1e-3, "values look like seconds since the epoch; set it to s"),
    ("s", 1.0, "values look like milliseconds since the epoch; set it to ms")])
def test_event_times_of_the_wrong_magnitude_are_an_error_with_the_fix(ref, capsys,
                                                                      unit, scale, want):
    """Epoch seconds read as milliseconds would put every event into one window in 1970;
    milliseconds read as seconds, tens of thousands of years ahead. Either is a config error
    at the first batch."""
    tmp, d, table = ref
    d = copy.deepcopy(d)
    d["stream"]["event_time"]["unit"] = unit
    ts = table.column("ts").to_numpy().astype(np.float64) * scale
    t = table.set_column(table.column_names.index("ts"), "ts",
                         pa.array(ts.astype(np.int64) if unit == "ms" else ts))
    rc, out, err = _replay(tmp, d, t, capsys)
    line = _one_line(err)
    assert rc != 0
    assert line == f"streamdrift: stream.event_time.unit: {want}", line


@pytest.mark.parametrize("unit, ts, want", [
    ("ms", START_MS // 1000, "seconds since the epoch; set it to s"),
    ("s", START_MS, "milliseconds since the epoch; set it to ms"),
    ("ms", START_MS, None), ("s", START_MS // 1000, None), ("ms", 1_000, None)])
def test_stage1_decode_stops_at_the_first_batch_of_the_wrong_unit(unit, ts, want):
    """Live: stage 1's decode is wrapped by TimeUnitCheck; the first batch with event times
    of the wrong magnitude raises the ConfigError (the supervisor shows it in /health and
    stops the stage) before any event is windowed; later batches are not checked again."""
    import orjson

    from monitor.config import from_dict
    from monitor.errors import ConfigError
    from monitor.stage1.decode import Decoder
    from monitor.stage1.event_time import TimeUnitCheck

    cfg = from_dict({"monitor": "m", "features": {"numeric": ["x"]},
                     "stream": {"event_time": {"field": "ts", "unit": unit}},
                     "windows": {"size": "1m"}, "reference": {"profile": "/r"}},
                    env={}, kafka=False)
    check = TimeUnitCheck(Decoder(cfg, {}, []).decode, "ts", unit)
    values = [orjson.dumps({"ts": ts + i, "x": 1.0}) for i in range(50)]
    offsets, stamps = np.arange(50, dtype=np.int64), np.full(50, -1, np.int64)
    if want is None:
        assert check(values, offsets, stamps).batch.n_events == 50
        return
    with pytest.raises(ConfigError) as e:
        check(values, offsets, stamps)
    assert str(e.value) == f"stream.event_time.unit: values look like {want}"
