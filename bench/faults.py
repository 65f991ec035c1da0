"""Faults: what crashes, kills, broker restarts and malformed input cost (issue 11).

Two parts, each against real brokers started here:

1. **The fault suite's scenarios** (``tests/faults/test_faults.py``, run as a pytest child
   process with ``STREAMDRIFT_FAULTS_OUT`` so it writes what it observed): a crash at every
   step boundary of the code (``monitor.faults.POINTS``), five ``kill -9`` at seeded random
   moments while events flow, two workers with one killed at 60 %, and three broker
   restarts (SIGTERM, SIGKILL, SIGTERM) on a broker of its own. Each scenario compares every
   window's event count and sketch digest with what its producer recorded. The bench runs
   the suite rather than a copy of it, so the figures are those the tests hold.
2. **Malformed input** (``monitor.dev.hostile_run.run_hostile``): 100,000 malformed messages
   of every kind of ``monitor.dev.hostile`` among 100,000 good ones through one monitor
   process; its RSS growth from the first dead-lettered message to the end.

Figures (all the ``*_lost`` / ``*_duplicated`` ones must be 0): ``faults.injected`` (crashes,
kills and broker restarts), ``faults.events_lost`` (events missing from or extra in the
reports), ``faults.windows_lost``, ``faults.reports_duplicated`` (a window reported twice
with different content), ``faults.alerts_duplicated`` (a window paged twice),
``faults.recovery_s_max`` (broker back or process killed -> monitor working again: the next
window reported after a broker restart, partitions re-taken after a kill),
``faults.malformed_rss_growth_mb``.

Run: ``python -m bench.faults`` (``--skip-suite`` or ``--skip-malformed`` for one part).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import publish

ROOT = Path(__file__).resolve().parents[1]


def run_suite() -> tuple[dict, float, int]:
    out = Path(tempfile.mkdtemp(prefix="sd-bench-faults-")) / "outcomes.json"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/faults/test_faults.py", "-q",
                           "-p", "no:cacheprovider"], cwd=ROOT, check=False,
                          env={**os.environ, "STREAMDRIFT_FAULTS_OUT": str(out)})
    wall = time.monotonic() - t0
    if not out.exists():
        raise SystemExit(f"the fault suite wrote no outcomes (pytest exit {proc.returncode})")
    return json.loads(out.read_text()), wall, proc.returncode


def run_malformed():
    from monitor.dev.hostile_run import run_hostile

    from monitor.dev.kafka import DevKafka

    with DevKafka() as k:
        return run_hostile(k.bootstrap, Path(tempfile.mkdtemp(prefix="sd-bench-hostile-")),
                           n_good=100_000, n_bad=100_000)


def main(argv: list[str]) -> int:
    figures: dict[str, tuple[float, str]] = {}
    rows = []
    ok = True
    if "--skip-suite" not in argv:
        outcomes, wall, code = run_suite()
        tot = {"injected": 0, "events_lost": 0, "windows_lost": 0, "reports_duplicated": 0,
               "alerts_duplicated": 0}
        recovery: list[float] = []
        for name, o in sorted(outcomes.items()):
            if "error" in o:
                rows.append(f"| {name} | scenario failed: {o['error'][:120]} | | | | | |")
                ok = False
                continue
            v = o["verdict"]
            tot["injected"] += o["injected"]
            for k in ("events_lost", "windows_lost", "reports_duplicated", "alerts_duplicated"):
                tot[k] += v[k]
            recovery += o["recovery_s"]
            rows.append(f"| {name} | {o['injected']} | {v['windows_expected']} | "
                        f"{v['events_lost']} | {v['windows_lost']} | "
                        f"{v['reports_duplicated']} | {v['alerts_duplicated']} | "
                        f"{max(o['recovery_s'], default=0):.1f} |")
        figures.update({f"faults.{k}": (float(v), "count") for k, v in tot.items()})
        figures["faults.recovery_s_max"] = (round(max(recovery, default=0.0), 1), "s")
        ok = ok and code == 0 and all(tot[k] == 0 for k in tot if k != "injected")
        suite = (f"Fault suite: pytest exit {code}, {wall:.0f} s wall.\n\n"
                 "| scenario | faults injected | windows | events lost | windows lost | "
                 "reports duplicated | alerts duplicated | recovery max (s) |\n"
                 "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    else:
        suite = "Fault suite skipped (--skip-suite)."
    if "--skip-malformed" not in argv:
        h = run_malformed()
        figures["faults.malformed_rss_growth_mb"] = (round(h.rss_growth_mb, 1), "MB")
        exact = h.dead_lettered == h.expected == h.reported and len(h.pids) == 1
        ok = ok and exact
        malformed = (f"Malformed input: {sum(h.expected.values()):,} bad messages of "
                     f"{h.kinds} kinds among good ones in {h.wall_s:.0f} s; dead-lettered and "
                     f"reported by reason exactly: {exact}; one PID: {len(h.pids) == 1}; RSS "
                     f"{h.rss_start_mb:.0f} -> {h.rss_end_mb:.0f} MB "
                     f"(growth {h.rss_growth_mb:.1f} MB).")
    else:
        malformed = "Malformed input skipped (--skip-malformed)."
    print(suite + "\n\n" + malformed)
    for k, (v, u) in sorted(figures.items()):
        print(f"{k:34s} {v:>10} {u}")
    publish("faults", figures, __doc__.split("\n\n")[0] + "\n\n" + suite + "\n\n" + malformed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
