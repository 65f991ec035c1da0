"""The label stream's batched label decoding (monitor/stage1/label_values.py) against the
per-value function it replaced (``columns.outcome_codes`` over ``to_pylist()``): the same code
for every row of random JSON batches through Arrow's JSON reader, for every kind of positive
label (1, 0, True, False, 1.0, "yes", "1"), so ``1 == True == 1.0`` and ``"1" != 1`` hold as
before; the bad path's Python twin agrees with both; and values the old function crashed on
(a list or an object as the label) are bad labels now."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pj
import pytest

from monitor.stage1.columns import outcome_codes
from monitor.stage1.label_values import label_codes, label_codes_py

POSITIVES = [1, 0, True, False, 1.0, "yes", "1", 2]
KINDS = {  # one kind of JSON value per batch, so Arrow types the column as one type
    "int": lambda r: int(r.integers(-1, 3)),
    "float": lambda r: float(r.choice([0.0, 1.0, 0.5, 2.0, -1.0])),
    "bool": lambda r: bool(r.integers(0, 2)),
    "string": lambda r: str(r.choice(["yes", "no", "1", "0", "True", ""])),
    "mixed_number": lambda r: [0, 1, 1.0, 0.0, 2.5][int(r.integers(0, 5))],
}


def batch(kind: str, seed: int, n: int = 300) -> list[bytes]:
    r = np.random.default_rng(seed)
    out = []
    for i in range(n):
        d = {"event_id": f"e{i}"}
        u = r.random()
        if u < 0.1:
            d["y"] = None
        elif u > 0.15:  # 5 %: the field is absent
            d["y"] = KINDS[kind](r)
        out.append(orjson.dumps(d))
    return out


def column(values: list[bytes]):
    t = pj.read_json(pa.py_buffer(b"\n".join(values)))
    return t.column("y").combine_chunks() if "y" in t.column_names else None


@pytest.mark.parametrize("positive", POSITIVES)
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("seed", [0, 1])
def test_batched_codes_equal_the_per_value_function(kind, positive, seed):
    values = batch(kind, seed)
    col = column(values)
    old, _ = outcome_codes(col.to_pylist(), positive)
    new = label_codes(col, positive)
    assert new.dtype == np.int8 and new.tolist() == old.tolist()
    py = [orjson.loads(v).get("y") for v in values]
    assert label_codes_py(py, positive).tolist() == old.tolist()
    assert {1, 0, -1} >= set(new.tolist())


@pytest.mark.parametrize("positive", POSITIVES)
def test_one_true_and_one_point_zero_are_the_same_label(positive):
    vals = [pa.array([1, 0]), pa.array([True, False]), pa.array([1.0, 0.0])]
    codes = [label_codes(v, positive).tolist() for v in vals]
    assert codes[0] == codes[1] == codes[2] == outcome_codes([1, 0], positive)[0].tolist()


def test_absent_null_and_whole_null_columns_are_no_label():
    assert label_codes(None, 1, 3).tolist() == [-1, -1, -1]
    assert label_codes(pa.nulls(2), 1).tolist() == [-1, -1]
    assert label_codes(pa.array([float("nan"), 1.0]), 1).tolist() == [-1, 1]
    assert outcome_codes([float("nan"), 1.0], 1)[0].tolist() == [-1, 1]


def test_large_integers_compare_exactly_like_python():
    big = 2**53 + 1
    assert label_codes(pa.array([big, big - 1]), big).tolist() == [1, 0]
    assert label_codes(pa.array([float(2**53)]), big).tolist() == [0]  # 2**53 != big
    assert outcome_codes([float(2**53)], big)[0].tolist() == [0]


def test_a_list_or_an_object_as_the_label_is_a_bad_label_not_a_crash():
    values = [orjson.dumps({"event_id": "a", "y": [1]}), orjson.dumps({"event_id": "b"})]
    assert label_codes(column(values), 1).tolist() == [-1, -1]
    values = [orjson.dumps({"event_id": "a", "y": {"v": 1}})]
    assert label_codes(column(values), 1).tolist() == [-1]
    assert label_codes_py([[1], {"v": 1}, 1], 1).tolist() == [-1, -1, 1]
    with pytest.raises(TypeError):  # what the per-value function did with them
        outcome_codes([[1]], 1)
