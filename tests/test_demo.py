"""``make demo``'s run (:func:`monitor.dev.demo.run_demo`, the code ``streamdrift demo`` runs
after starting its broker) against the session's real broker, shortened to 6 windows:
predictions and their outcomes on two topics, each outcome delayed at random up to
``labels.max_delay``, the model wrong in channel ``app`` only from a known window. The
performance alert names that slice, in its windows only, the other channels stay quiet (in
the alerts and in every window's performance findings), and what the demo prints says so."""

from __future__ import annotations

import time

import pytest

from monitor.dev.demo import DEGRADE_AT, WINDOW_S, run_demo
from monitor.dev.demo_labels import DEGRADED, LABELS_TOPIC, SLICE_KEY

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

STEADY = {f"{SLICE_KEY}={c}" for c in ("web", "branch", "partner", "other")}
BAD = f"{SLICE_KEY}={DEGRADED}"


def test_the_demo_shows_a_degradation_in_one_slice_and_quiet_others(kafka_bootstrap,
                                                                    tmp_path):
    lines: list[str] = []

    def echo(*x, end="\n", **_):
        lines.append(" ".join(str(v) for v in x) + end)

    run = run_demo(tmp_path / "demo", kafka_bootstrap, n_windows=6,
                   suffix=f"-{int(time.time() * 1000) % 10**8}", echo=echo)
    text = "".join(lines)
    assert run.ok, text[-3000:]
    degrade_ms = run.t0_ms + DEGRADE_AT * WINDOW_S * 1000
    # the label stream: every window's outcomes arrived, late, on their own topic
    assert LABELS_TOPIC in text
    assert len(run.performance) == 6
    for w, r in run.performance.items():
        o = r["overall"]
        assert o["labelled"] + o["expired"] == o["predictions"] > 5000, (w, o)
        assert r["model"] == {"name": "credit-risk", "version": "v3.2"}
        bad = {f["slice"] for f in r["findings"] if f["alert"]}
        if w >= degrade_ms:
            assert BAD in bad, (w, bad)
        else:
            assert bad == set(), (w, bad)
        assert not bad & STEADY, (w, bad)
    # the alerts: the slice is named, in its windows, the steady slices never page
    perf = [(a["window_start_ms"], i) for a in run.alerts if a["kind"] == "firing"
            for i in a["items"] if i["family"] == "performance"]
    assert any(i["feature"] == BAD and i["check"] == "accuracy_drop" for _, i in perf), perf
    assert all(w >= degrade_ms for w, _ in perf)
    assert not {i["feature"] for _, i in perf} & STEADY
    assert next(i for _, i in perf if i["feature"] == BAD)["detail"]["model_version"] == "v3.2"
    # ... and the demo's own output shows it
    assert f"{BAD}/accuracy_drop" in text
    assert any(line.startswith("performance") and f"{BAD}: accuracy" in line
               for line in text.replace("\r", "\n").splitlines())
