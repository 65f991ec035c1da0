"""A reference profile built for other features does not fit the config: ``replay`` and
``run`` say so in one line, naming the fields, and how to rebuild it — never a ValueError
traceback, and never statistics computed against the wrong columns."""

from __future__ import annotations

import copy

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitor.cli import main
from monitor.config import from_dict
from monitor.dev.synthetic import Scenario, generate
from monitor.profile import build_profile, save_profile
from tests.e2e_harness import START_MS, config_dict, write_config


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    d = config_dict(tmp, "127.0.0.1:1", "t")
    cols = generate(Scenario(n_events=5_000, events_per_s=1_000, seed=5, start_ms=START_MS))
    table = pa.table({k: v for k, v in cols.items() if not k.startswith("_")})
    table = table.append_column("extra", pa.array([1.0] * table.num_rows))
    pq.write_table(table, tmp / "train.parquet")
    save_profile(build_profile(from_dict(d, base_dir=tmp, env={}), tmp / "train.parquet"),
                 tmp / "ref.profile")
    return tmp, d


def _changed(d, how):
    d = copy.deepcopy(d)
    f = d["features"]
    if how == "missing":
        f["numeric"] = [*f["numeric"], "extra"]
    elif how == "type":
        f["categorical"] = [c for c in f["categorical"] if c != "region"]
        f["numeric"] = [*f["numeric"], "region"]
    elif how == "order":
        f["numeric"] = list(reversed(f["numeric"]))
    return d


WANT = {"missing": "features.numeric 'extra' is not in the profile",
        "type": "'region' is numeric in the config and categorical in the profile",
        "order": "features.numeric are in another order"}


@pytest.mark.parametrize("how", list(WANT))
@pytest.mark.parametrize("command", ["replay", "run"])
def test_a_profile_that_does_not_fit_says_rebuild_it(built, capsys, how, command):
    tmp, d = built
    cfg = write_config(tmp, _changed(d, how))
    argv = ["run", "-c", str(cfg)] if command == "run" else \
        ["replay", "-c", str(cfg), "--input", str(tmp / "train.parquet"),
         "--reports", str(tmp / "out.jsonl")]
    rc = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    line = lines[0]
    assert WANT[how] in line, line
    assert "rebuild the profile with `streamdrift profile build -c" in line, line
    assert str(tmp / "ref.profile") in line


def test_the_profile_it_was_built_with_fits(built, capsys):
    tmp, d = built
    rc = main(["replay", "-c", str(write_config(tmp, d)), "--input",
               str(tmp / "train.parquet"), "--reports", str(tmp / "out.jsonl")])
    assert rc == 0, capsys.readouterr().err
