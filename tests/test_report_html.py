"""``streamdrift report``: one HTML file that opens in headless Chromium without console
errors and holds every chart: drift over time, histograms, quality rates, fairness ratios,
and a reliability diagram when the reports carry performance figures."""

from __future__ import annotations

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
        assert page.charts("drift-over-time") == 25  # 20 numeric, score, class, 3 categorical
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


def test_report_names_the_model_version_and_keeps_versions_apart(reports_file, tmp_path,
                                                                 capsys):
    """Windows 0-2 of model v1, 3-5 of v2 (whose profile was built for v1): one section per
    version, each named, with its own windows; v2's says its profile is of another version.
    Reports without model fields (written before model identity) read as unversioned."""
    import orjson

    lines = [orjson.loads(x) for x in reports_file.read_text().splitlines()]
    mixed = tmp_path / "versions.jsonl"
    out_lines = []
    for i, r in enumerate(lines):
        v = "v1" if i < 3 else "v2"
        out_lines.append({**r, "model": "churn", "model_version": v, "profile_model_version": "v1"})
    old = {k: v for k, v in lines[0].items() if not k.startswith(("model", "profile_model"))}
    old["window_start_ms"] -= 10 * WINDOW
    old["window_end_ms"] -= 10 * WINDOW
    mixed.write_text("\n".join(orjson.dumps(r).decode() for r in [old, *out_lines]) + "\n")
    out = tmp_path / "versions.html"
    assert main(["report", "--input", str(mixed), "-o", str(out)]) == 0
    html = out.read_text()
    for model, n in (("churn:v1", 3), ("churn:v2", 3), (f"{old['monitor']}:unversioned", 1)):
        section = html.split(f'data-model="{model}"', 1)[1].split('<section class="group"')[0]
        assert f"model {model} · {n} windows" in section
        assert section.count('<tr class="') == n
        assert ("profile-mismatch" in section) == (model == "churn:v2")


def test_labelled_replay_report_draws_performance_and_reliability(tmp_path, browser):  # noqa: F811
    """``replay --labels`` writes performance reports beside the window reports; the report
    joins them to their windows: performance over time per check and slice (the degraded
    slice in red once it degrades) and the latest window's reliability diagram."""
    import yaml

    from tests.test_replay_labels import cli, config, files

    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(config(tmp_path)))
    files(tmp_path, "train", 1, n=20_000)
    files(tmp_path, "live", 2, degraded_slice=1, degrade_at_ms=20_000)
    cli("profile", "build", "-c", str(tmp_path / "monitor.yaml"), "--input",
        str(tmp_path / "train.parquet"), "--labels", str(tmp_path / "train-labels.parquet"),
        "-o", str(tmp_path / "ref.profile"))
    cli("replay", "-c", str(tmp_path / "monitor.yaml"), "--input",
        str(tmp_path / "live.parquet"), "--reports", str(tmp_path / "reports.jsonl"),
        "--labels", str(tmp_path / "live-labels.parquet"))
    out = tmp_path / "labels.html"
    assert main(["report", "--input", str(tmp_path / "reports.jsonl"), "-o", str(out)]) == 0
    page = _open(browser, out, "report-performance")
    try:
        assert page.errors == []
        assert page.charts("reliability") == 1
        assert page.page.locator("svg[data-chart=reliability] circle.mark").count() >= 3
        assert page.charts("performance-over-time") >= 2
        assert "churn v7" in page.page.locator(".perf-about").inner_text()
        red = page.page.locator(".card:has(svg[data-chart=performance-over-time]) "
                                "circle.mark.bad")
        assert red.count() >= 1
    finally:
        page.close()


def test_bad_command_lines_say_one_line(tmp_path, capsys):
    assert main(["report", "-o", str(tmp_path / "x.html")]) == 2
    assert main(["report", "--input", str(tmp_path / "none.jsonl"), "-o", "x.html"]) == 2
    assert main(["report", "--input", str(tmp_path), "-o", "x.html", "--from", "soon"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("streamdrift: ") for e in err)
    assert "Traceback" not in "".join(err)
