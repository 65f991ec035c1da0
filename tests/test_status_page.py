"""The status page of a monitor running on the real broker, in headless Chromium.

A mean shift is injected into ``utilization`` from window 3 (and a fairness gap); the page
must load without console errors, show the drift in that feature and those windows only,
show the window's histogram against the reference, quality / fairness / alerts views, and
redraw by itself when the next window closes. A screenshot of each view is saved
(test-output/screenshots/status-*.png)."""

from __future__ import annotations

import orjson
import pytest

from monitor.cli import main
from monitor.dev.kafka import free_port
from monitor.dev.synthetic import FairnessGap, Scenario, Shift
from tests.browser import Page, browser  # noqa: F401 - the fixture
from tests.e2e_harness import (
    START_MS, MonitorProcess, ReportReader, build_reference, config_dict, create_topic,
    produce, write_config,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

W = 1000          # window size, ms
RATE = 10_000     # events per second of event time: 10,000 per window
SHIFT_AT = 3      # first drifted window
PHASE1 = 6        # windows of events sent first: windows 0..4 close, 5 waits for more data
SHIFT = Shift("utilization", START_MS + SHIFT_AT * W, 0.5)
GAP = FairnessGap("18-25", START_MS + SHIFT_AT * W, 0.6)


@pytest.fixture()
def monitor(kafka_bootstrap, tmp_path):
    topic = create_topic(kafka_bootstrap, 4)
    port = free_port()
    # windows close on data only (no idle heartbeats within the test), so the page's
    # latest window is the one the test expects
    d = config_dict(tmp_path, kafka_bootstrap, topic, size=W, idle_timeout=120_000)
    d["http"] = {"host": "127.0.0.1", "port": port}
    cfg, _ = build_reference(tmp_path, d, n=50_000)
    path = write_config(tmp_path, d)
    mon = MonitorProcess(path, tmp_path / "monitor.log")
    reader = ReportReader(kafka_bootstrap, cfg.topics.reports)
    try:
        yield topic, f"http://127.0.0.1:{port}", mon, reader, path, cfg.monitor
    finally:
        mon.stop()
        reader.close()


def _window(i: int) -> str:
    return f'tr[data-window="{START_MS + i * W}"]'


def test_status_page_shows_the_injected_drift_and_follows_new_windows(
        monitor, kafka_bootstrap, browser, capsys):  # noqa: F811
    topic, url, mon, reader, path, name = monitor
    produce(kafka_bootstrap, topic, Scenario(n_events=PHASE1 * RATE, events_per_s=RATE,
                                             seed=21, shifts=(SHIFT,), gaps=(GAP,)))
    reports = reader.wait_for(PHASE1 - 1, 240, procs=[mon], before_ms=START_MS + PHASE1 * W)
    truth = {s: {c["feature"] for c in r["checks"] if c["flagged"]
                 and c["family"] == "numeric_drift"} for s, r in reports.items()}
    assert [bool(truth[START_MS + i * W]) for i in range(PHASE1 - 1)] == \
        [i >= SHIFT_AT for i in range(PHASE1 - 1)], truth

    page = Page(browser)
    p = page.page
    try:
        # -- overview: the latest windows with verdicts, drift over time per feature
        p.goto(url + "/")
        p.wait_for_selector(_window(PHASE1 - 2), timeout=60_000)
        for i in range(PHASE1 - 1):
            cls = p.locator(_window(i)).get_attribute("class")
            assert cls == ("flagged" if i >= SHIFT_AT else "healthy"), (i, cls)
            if i >= SHIFT_AT:
                assert "utilization" in p.locator(_window(i) + " td.verdict").inner_text()
        card = p.locator('.card[data-feature="utilization"]')
        assert card.locator("circle.mark.bad").count() == PHASE1 - 1 - SHIFT_AT
        assert card.locator("circle.mark").count() == PHASE1 - 1
        assert "bad" in card.get_attribute("class")
        clean = p.locator('.card:not([data-feature="utilization"]):not([data-feature="class"])'
                          " circle.mark.bad").count()
        assert clean == 0
        # the fairness gap refuses one group's approvals from SHIFT_AT on: the predicted-class
        # rate (prediction drift) may flag those windows, never the earlier ones
        marks = p.locator('.card[data-feature="class"] circle.mark')
        assert marks.count() == PHASE1 - 1
        assert all("bad" not in (marks.nth(i).get_attribute("class") or "")
                   for i in range(SHIFT_AT))
        assert page.charts("drift-over-time") == 25  # 20 numeric, score, class, 3 categorical
        assert p.locator("section.health").inner_text().count("source: ok") == 1
        page.shot("status-overview")

        # -- feature view: one click from the card; the latest window against the reference
        card.locator("a").click()
        p.wait_for_selector('section.feature[data-feature="utilization"]')
        hist = p.locator('.hist[data-feature="utilization"]')
        assert int(hist.get_attribute("data-window")) == START_MS + (PHASE1 - 2) * W
        assert page.charts("histogram") == 1
        latest = reports[START_MS + (PHASE1 - 2) * W]
        psi = next(c for c in latest["checks"]
                   if c["check"] == "psi" and c["feature"] == "utilization")
        bars = p.locator("svg[data-chart=histogram] rect.bar.window")
        assert bars.count() == len(psi["detail"]["histogram"]["window"]) == 20
        page.shot("status-feature")

        # -- quality, fairness, performance
        p.locator('nav.tabs a[data-view="quality"]').click()
        p.wait_for_selector("section.fairness")
        assert page.charts("quality-rates") == 1
        assert page.charts("fairness-ratios") == 1
        assert p.locator("svg[data-chart=fairness-ratios] circle.mark.bad").count() >= 1
        page.shot("status-quality")

        # -- alerts: the drift alert is open
        p.locator('nav.tabs a[data-view="alerts"]').click()
        p.wait_for_selector("section.open-alerts")
        p.wait_for_selector('tr[data-key*="/utilization"]', timeout=30_000)

        # -- the same open alerts from a shell; a silence shows on the page
        capsys.readouterr()
        assert main(["alerts", "list", "-c", str(path), "--json"]) == 0
        listed = orjson.loads(capsys.readouterr().out)
        keys = {i["key"] for i in listed["open"]}
        key = f"{name}/{name}:unversioned/ks/utilization"  # monitor/model:version/check/feature
        assert {key, f"{name}/{name}:unversioned/psi/utilization"} <= keys
        assert not any("income" in k for k in keys) and listed["silences"] == []
        assert main(["alerts", "silence", "-c", str(path), key,
                     "--for", "1h", "--reason", "known shift", "--by", "on-call"]) == 0
        assert capsys.readouterr().out.startswith(f"silenced {name}/*/ks/utilization until")
        assert main(["alerts", "list", "-c", str(path)]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split()[:4] == ["SEVERITY", "FAMILY", "CHECK", "FEATURE"]
        row = next(r for r in table if r.endswith(key))
        assert "until" in row  # the SILENCED column
        p.reload()
        p.wait_for_selector("table.silences")
        assert "known shift" in p.locator("table.silences").inner_text()
        page.shot("status-alerts")
        assert main(["alerts", "unsilence", "-c", str(path), f"{name}/ks/utilization"]) == 0
        assert main(["alerts", "unsilence", "-c", str(path), f"{name}/ks/utilization"]) == 1
        assert "no silence matched" in capsys.readouterr().out

        # -- the next window closes: the overview redraws without a reload
        p.locator('nav.tabs a[data-view="overview"]').click()
        p.wait_for_selector(_window(PHASE1 - 2))
        assert p.locator(_window(PHASE1 - 1)).count() == 0
        p.evaluate("window.__same_document = true")
        produce(kafka_bootstrap, topic, Scenario(
            n_events=RATE, start_ms=START_MS + PHASE1 * W, events_per_s=RATE, seed=22,
            shifts=(SHIFT,), gaps=(GAP,)))
        p.wait_for_selector(_window(PHASE1 - 1), timeout=120_000)
        assert p.evaluate("window.__same_document") is True  # redrawn in place
        assert p.locator(_window(PHASE1 - 1)).get_attribute("class") == "flagged"
        assert card.locator("circle.mark").count() == PHASE1
        page.shot("status-overview-updated")
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_status_page_separates_two_model_versions(kafka_bootstrap, topic_factory, produce,
                                                  tmp_path, browser):  # noqa: F811
    """A model moved from v1 to v2 at window 3 (utilization drifted throughout): reports
    and alerts of both versions on real topics, read by the page's own topic reader. Each
    version's selection shows its own windows only, its own open alerts (v1's was closed as
    superseded), and the version in the headline; a screenshot of each."""
    import pyarrow as pa

    from monitor.config import from_dict
    from monitor.dev.synthetic import generate
    from monitor.replay import replay
    from monitor.stage2.evaluate import policy_from_config
    from monitor.web.history import History, TopicReader
    from monitor.web.http import StageCollector, serve
    from monitor.web.status import StatusPage

    d = config_dict(tmp_path, kafka_bootstrap, "t", size=W, min_events=500)
    _, profile = build_reference(tmp_path, d, n=20_000)
    cols = generate(Scenario(n_events=6 * 2000, events_per_s=2000, seed=4,
                             shifts=(Shift("utilization", START_MS, 0.5),)))
    cols = {k: v for k, v in cols.items() if not k.startswith("_")}
    cut = cols["ts"] < START_MS + 3 * W
    reports = []
    for version, rows in (("v1", cut), ("v2", ~cut)):
        cfg = from_dict({**d, "model": {"name": "churn", "version": version}}, base_dir=tmp_path,
                        env={})
        reports += list(replay(cfg, profile, pa.table({k: v[rows] for k, v in cols.items()})))
    assert [r.model_version for r in reports] == ["v1"] * 3 + ["v2"] * 3
    policy = policy_from_config(cfg)
    alerts = [a for r in reports for a in policy.update(r).alerts]
    assert any(a.reason == "superseded" and a.model_version == "v1" for a in alerts)
    reports_topic, alerts_topic = topic_factory(1, prefix="reports"), topic_factory(1, "alerts")
    produce(reports_topic, [r.to_dict() for r in reports])
    produce(alerts_topic, [a.to_dict() for a in alerts])

    history = History()
    reader = TopicReader({"bootstrap.servers": kafka_bootstrap}, reports_topic, alerts_topic,
                         history).start()
    port = free_port()
    server = serve("127.0.0.1", port, StageCollector(cfg.monitor, None, None),
                   routes=StatusPage(history).route)
    page = Page(browser)
    p = page.page
    try:
        for version, windows in (("v1", range(3)), ("v2", range(3, 6))):
            p.goto(f"http://127.0.0.1:{port}/?monitor={cfg.monitor}|churn:{version}")
            p.wait_for_selector(_window(windows[-1]), timeout=60_000)
            top = p.locator("section.top")
            assert top.get_attribute("data-model") == f"churn:{version}"
            shown = {int(x) for x in p.locator("tr[data-window]").evaluate_all(
                "rows => rows.map(r => r.getAttribute('data-window'))")}
            assert shown == {START_MS + i * W for i in windows}, (version, shown)
            assert f"model churn:{version}" in p.locator("section.latest h2").inner_text()
            keys = p.locator("section.open-alerts tr[data-key]").evaluate_all(
                "rows => rows.map(r => r.getAttribute('data-key'))")
            if version == "v1":
                assert keys == []      # closed when v2 took over
            else:
                assert f"{cfg.monitor}/churn:v2/ks/utilization" in keys
                assert all("/churn:v2/" in k for k in keys), keys
            options = p.locator('select[data-param="monitor"] option').all_inner_texts()
            assert {f"{cfg.monitor} · churn:v1", f"{cfg.monitor} · churn:v2"} <= set(options)
            page.shot(f"status-version-{version}")
        # the selector switches versions
        p.select_option('select[data-param="monitor"]', f"{cfg.monitor}|churn:v1")
        p.wait_for_selector('section.top[data-model="churn:v1"]')
        assert page.errors == [], page.errors
    finally:
        page.close()
        server.shutdown()
        reader.close()
