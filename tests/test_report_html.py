"""``streamdrift report``: one HTML file that opens in headless Chromium without console
errors and holds every chart: drift over time, histograms, quality rates, fairness ratios,
and a reliability diagram when the reports carry performance figures."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from monitor.cli import main
from monitor.dev.synthetic import FairnessGap, Scenario, Shift, generate
from monitor.replay import replay, write_reports
from tests.browser import Page, browser  # noqa: F401 - the fixture
from tests.e2e_harness import START_MS, build_reference, config_dict

WINDOW = 1000
SHIFT_AT = 3  # window index where utilization shifts


@pytest.fixture(scope="module")
def reports_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    d = config_dict(tmp, "127.0.0.1:1", "t", size=WINDOW)
    cfg, profile = build_reference(tmp, d, n=50_000)
    scen = Scenario(n_events=60_000, events_per_s=10_000, seed=7,
                    shifts=(Shift("utilization", START_MS + SHIFT_AT * WINDOW, 0.5),),
                    gaps=(FairnessGap("18-25", START_MS + SHIFT_AT * WINDOW, 0.6),))
    cols = generate(scen)
    table = pa.table({k: v for k, v in cols.items() if not k.startswith("_")})
    path = tmp / "reports.jsonl"
    assert write_reports(replay(cfg, profile, table), path) == 6
    return path


def _open(browser, path, name):  # noqa: F811
    page = Page(browser)
    page.page.goto(path.as_uri())
    page.shot(name, full_page=True)
    return page


def test_report_opens_without_errors_and_holds_every_chart(reports_file, tmp_path, browser,  # noqa: F811
                                                           capsys):
    out = tmp_path / "drift.html"
    assert main(["report", "--input", str(reports_file), "-o", str(out)]) == 0
    assert "6 windows written" in capsys.readouterr().out
    html = out.read_text()
    assert "<script" not in html and "src=\"http" not in html and "href=\"http" not in html
    page = _open(browser, out, "report")
    try:
        assert page.errors == []
        assert page.charts("drift-over-time") == 24  # 20 numeric + score + 3 categorical
        assert page.charts("histogram") == 24
        assert page.charts("quality-rates") == 1
        assert page.charts("fairness-ratios") == 1 and page.charts("selection-rates") == 1
        # the injected drift: utilization flagged from the shift on, red marks there only
        card = page.page.locator('.card[data-feature="utilization"]')
        assert card.locator("circle.mark.bad").count() == 6 - SHIFT_AT
        assert page.page.locator('.card[data-feature="income"] circle.mark.bad').count() == 0
        rows = page.page.locator("table.windows tbody tr")
        flagged = [rows.nth(i).get_attribute("class") for i in range(rows.count())]
        assert flagged == ["flagged"] * (6 - SHIFT_AT) + ["healthy"] * SHIFT_AT
        # the first histogram is the drifted feature's, in a window where it drifted
        first = page.page.locator(".hist").first
        assert first.get_attribute("data-feature") == "utilization"
        assert int(first.get_attribute("data-window")) >= START_MS + SHIFT_AT * WINDOW
    finally:
        page.close()


def test_window_range_keeps_only_the_windows_asked_for(reports_file, tmp_path, capsys):
    out = tmp_path / "part.html"
    assert main(["report", "--input", str(reports_file), "-o", str(out), "--from",
                 str(START_MS + 2 * WINDOW), "--to", str(START_MS + 4 * WINDOW)]) == 0
    assert "2 windows written" in capsys.readouterr().out
    assert out.read_text().count('<tr class="') == 2


def test_performance_figures_render_with_a_reliability_diagram(reports_file, tmp_path,
                                                               browser):  # noqa: F811
    """Rendering only: a performance check in the shape the labels work is expected to
    give (accuracy and calibration bins) until labelled reports come from the pipeline."""
    lines = reports_file.read_bytes().splitlines()
    last = orjson.loads(lines[-1])
    bins = [{"mean_predicted": (i + 0.5) / 10, "observed": (i + 0.5) / 10 * 0.8, "n": 100}
            for i in range(10)]
    last["checks"].append({"check": "calibration_error", "family": "performance",
                           "feature": "*", "statistic": 0.06, "p_value": None,
                           "effect_size": 0.06, "n_window": 1000, "n_reference": 0,
                           "sufficient": True, "flagged": False, "severity": "info",
                           "detail": {"reliability": bins}})
    src = tmp_path / "with-labels.jsonl"
    src.write_bytes(b"\n".join([*lines[:-1], orjson.dumps(last)]) + b"\n")
    out = tmp_path / "labels.html"
    assert main(["report", "--input", str(src), "-o", str(out)]) == 0
    page = _open(browser, out, "report-performance")
    try:
        assert page.errors == []
        assert page.charts("reliability") == 1
        assert page.charts("performance-over-time") == 1
        assert page.page.locator("svg[data-chart=reliability] circle.mark").count() == 10
    finally:
        page.close()


def test_bad_command_lines_say_one_line(tmp_path, capsys):
    assert main(["report", "-o", str(tmp_path / "x.html")]) == 2
    assert main(["report", "--input", str(tmp_path / "none.jsonl"), "-o", "x.html"]) == 2
    assert main(["report", "--input", str(tmp_path), "-o", "x.html", "--from", "soon"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("streamdrift: ") for e in err)
    assert "Traceback" not in "".join(err)
