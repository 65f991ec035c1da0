"""dashboards/*.json asks only for metrics a running monitor exports.

A monitor runs on the real broker over a little traffic (with a few malformed messages, so
bad events by reason exist) until a window closed; every metric named in a dashboard query or
template variable must be in its /metrics (as a family or a sample name).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.dev.kafka import free_port
from monitor.dev.synthetic import Scenario
from tests.e2e_harness import (
    RATE,
    MonitorProcess,
    build_reference,
    config_dict,
    create_topic,
    produce,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
REQUIRED = {"streamdrift_events_in_total", "streamdrift_bad_events_total",
            "streamdrift_drift_score", "streamdrift_windows_closed_total",
            "streamdrift_consumer_lag", "streamdrift_watermark_delay_seconds",
            "streamdrift_alerts_firing", "streamdrift_sink_up", "streamdrift_stage_healthy"}


def queries(dash: dict) -> list[str]:
    out = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            out.append(q["query"])
    return out


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(streamdrift_[a-z0-9_]+)\b", expr))


def test_dashboards_are_well_formed_and_cover_the_issue():
    assert DASHBOARDS
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), path
        for p in dash["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24 and p["targets"], (path, p["title"])
            for t in p["targets"]:
                assert metric_names(t["expr"]), (p["title"], t["expr"])
                assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
        named = set().union(*map(metric_names, queries(dash)))
        assert REQUIRED <= named, REQUIRED - named


@pytest.mark.kafka
def test_every_metric_a_dashboard_queries_is_exported(kafka_bootstrap, tmp_path):
    topic = create_topic(kafka_bootstrap, 1)
    d = config_dict(tmp_path, kafka_bootstrap, topic)
    d["http"]["port"] = port = free_port()
    build_reference(tmp_path, d, n=20_000)
    path = write_config(tmp_path, d)
    n = 80_000                         # ~2.7 windows of 3 s at 10,000 events/s
    produce(kafka_bootstrap, topic, Scenario(n_events=n, events_per_s=RATE, seed=3),
            partitions=1, garbage=[b"{not json", b"\xff\xfe"] * 5, garbage_every=n // 10)
    mon = MonitorProcess(path, tmp_path / "monitor.log")
    url = f"http://127.0.0.1:{port}/metrics"

    def scrape() -> str:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            return ""

    named: set[str] = set()
    for dash_path in DASHBOARDS:
        named |= set().union(*map(metric_names, queries(json.loads(dash_path.read_text()))))
    exported: set[str] = set()
    closed = False
    try:   # scrape until a window closed and the dashboards' metrics were all seen
        deadline = time.monotonic() + 240
        while not (closed and named <= exported):
            assert time.monotonic() < deadline, f"window closed: {closed}; never exported: " \
                f"{sorted(named - exported)}"
            assert mon.alive(), "the monitor exited"
            time.sleep(1)
            text = scrape()
            closed = closed or bool(re.search(
                r"^streamdrift_windows_closed_total\{[^}]*\} [1-9]", text, re.MULTILINE))
            for fam in text_string_to_metric_families(text):
                exported.add(fam.name)
                if fam.type == "counter":
                    exported.add(fam.name + "_total")
                exported.update(smp.name for smp in fam.samples)
    finally:
        mon.stop()
