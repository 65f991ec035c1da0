"""Headless Chromium (Debian's ``chromium`` package) driven by Playwright, for page tests.

Playwright's own browser download cannot be used here, so it drives the system binary
(``STREAMDRIFT_CHROMIUM`` or /usr/bin/chromium; the Makefile and .ci/run install it).
Screenshots go to ``test-output/screenshots/`` (``STREAMDRIFT_TEST_OUTPUT`` moves it).
"""

from __future__ import annotations

import atexit
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("STREAMDRIFT_TEST_OUTPUT", ROOT / "test-output")) / "screenshots"


def chromium_path() -> str:
    path = os.environ.get("STREAMDRIFT_CHROMIUM") or shutil.which("chromium") or \
        "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("headless Chromium is missing: `apt-get install chromium` (make test and "
                    ".ci/run install it)")
    return path


_SHARED: dict = {}  # one Playwright + Chromium per test process, whichever module asks


def _close() -> None:
    if _SHARED:
        _SHARED.pop("browser").close()
        _SHARED.pop("playwright").stop()


@pytest.fixture()
def browser():
    """The shared headless Chromium (started on first use, closed when pytest exits).
    Modules import this fixture; one browser serves them all."""
    if not _SHARED:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        _SHARED["playwright"] = pw
        _SHARED["browser"] = pw.chromium.launch(executable_path=chromium_path(),
                                                headless=True,
                                                args=["--no-sandbox", "--disable-gpu"])
        atexit.register(_close)
    return _SHARED["browser"]


class Page:
    """A page that records console errors and uncaught exceptions."""

    def __init__(self, browser, width: int = 1366, height: int = 900) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def shot(self, name: str, full_page: bool = False) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def charts(self, kind: str) -> int:
        return self.page.locator(f'svg.chart[data-chart="{kind}"]').count()

    def close(self) -> None:
        self.page.close()
