"""``python -m bench.bench_labels --quick`` (no broker, a few seconds): every figure the
issue names is printed, finite and in its unit, and a quick run publishes nothing."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

FIGURES = {
    "labels.join_events_per_s_per_core": "events/s",
    "labels.python_dict_join_events_per_s_per_core": "events/s",
    "labels.join_speedup_vs_python_dict": "ratio",
    "labels.pending_bytes_per_million": "bytes",
    "labels.delay_windows_degradation": "windows",
}
ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_prints_every_figure_finite_and_publishes_nothing():
    before = (ROOT / "bench" / "results.json").read_bytes()
    r = subprocess.run([sys.executable, "-m", "bench.bench_labels", "--quick"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    printed = {}
    for line in r.stdout.splitlines():
        name, eq, rest = line.partition(" = ")
        if eq and name.startswith("labels."):
            value, unit = rest.split(" ", 1)
            printed[name] = (float(value), unit)
    for name, unit in FIGURES.items():
        value, got_unit = printed[name]
        assert math.isfinite(value) and value > 0 and got_unit == unit, (name, value)
    # the memory figure is the documented formula at one million: 30 bytes x 2**21 slots
    assert printed["labels.pending_bytes_per_million"][0] == 30 * 2**21
    assert "| PartitionLabels" in r.stdout and "| baseline: plain Python dict join" in r.stdout
    assert (ROOT / "bench" / "results.json").read_bytes() == before
