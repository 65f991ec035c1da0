"""``bench/bench_detection.py --quick`` runs end to end: every scenario of issue 13's family
is in its output, scored for the monitor and each baseline, and a smoke run publishes
nothing. The bench's figures themselves come from the full run (``make bench``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the family the issue asks for, named as the bench names them
DRIFTS = ["shift_0_05sd", "shift_0_1sd", "shift_0_3sd", "variance_1_1", "variance_1_25",
          "variance_1_5", "heavy_tail", "mixture", "category_mix", "new_category",
          "null_burst", "unit_bug", "fairness_gap"]


def test_quick_bench_scores_every_scenario_and_publishes_nothing(tmp_path):
    results = ROOT / "bench" / "results.json"
    before = results.read_bytes() if results.exists() else None
    out = tmp_path / "cells.json"
    run = subprocess.run([sys.executable, "-m", "bench.bench_detection", "--quick",
                          "--json-out", str(out)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    cells = json.loads(out.read_text())["cells"]
    for name in DRIFTS:
        cell = cells[f"{name}@500"]
        for detector in ("monitor", "naive", "adwin"):
            assert cell[detector]["runs"] == 1, (name, detector)
            assert 0.0 <= cell[detector]["power"] <= cell[detector]["detected"] <= 1.0
        assert f"| {name} | 500 |" in run.stdout  # its row in the printed table
    free = cells["drift_free@500"]["false_alarms"]
    assert free["monitor"][1] > 0 and free["adwin"][1] > 0 and free["kswin"][1] > 0
    # a page is matched to the scenario's subject: faults no setting can miss are found
    for name in ("unit_bug", "new_category"):
        assert cells[f"{name}@500"]["monitor"]["detected"] == 1.0, name
        assert cells[f"{name}@500"]["paged_by"], name
    assert "detection.false_page_rate" in run.stdout
    assert (results.read_bytes() if results.exists() else None) == before
