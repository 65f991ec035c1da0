"""Figures out of a benchmark run: merged into bench/results.json, rendered into RESULTS.md.

Every benchmark calls :func:`publish` once at the end of its run with the figures it measured
and a markdown section that explains them. ``results.json`` keeps one entry per figure name
(``{"value", "unit", "command", "measured_at"}``); ``RESULTS.md`` is rebuilt from the stored
sections, so it always shows what the last run of each benchmark printed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "RESULTS.md"
SECTIONS = HERE / "sections"


def command_line() -> str:
    """The command that produced this run, as a user would type it from the repo root."""
    return " ".join(["python", "-m", sys.modules["__main__"].__spec__.name] + sys.argv[1:]) \
        if getattr(sys.modules["__main__"], "__spec__", None) else " ".join(["python"] + sys.argv)


def publish(section: str, figures: dict[str, tuple[float, str]], text: str) -> None:
    """Merge ``figures`` (name -> (value, unit)) into results.json and store ``text``."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    cmd = command_line()
    data = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    for name, (value, unit) in figures.items():
        data[name] = {"value": value, "unit": unit, "command": cmd, "measured_at": now}
    RESULTS_JSON.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")
    SECTIONS.mkdir(exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    (SECTIONS / f"{section}.md").write_text(
        f"## {section}\n\n`{cmd}` — {now} — {machine}\n\n{text.strip()}\n"
    )
    parts = [p.read_text() for p in sorted(SECTIONS.glob("*.md"))]
    RESULTS_MD.write_text(
        "# Benchmark results\n\nWritten by the benchmarks themselves (`make bench`); "
        "do not edit by hand. Figures are medians over repeated runs on a noisy 2-core "
        "machine; compare the ratios, not the absolute numbers.\n\n" + "\n".join(parts)
    )


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
