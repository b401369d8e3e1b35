"""The weekly report in a real browser: Debian's headless Chromium driven by Playwright.

No console error, no request leaving the file, the key parts visible at a desktop width and at a
phone's (390 px) without the page scrolling sideways. Skipped only where /usr/bin/chromium is not
installed (``.ci/run`` installs it with apt-get where it can).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.report import write_report
from test_report import WEEK, sample_db, settings_for  # noqa: F401 (sample_db is a fixture)

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
KEY_ELEMENTS = ("#headline h2", "#headline-table", "#opportunities h2", "#opportunities-table",
                "#chart-flags svg", "#chart-categories svg", "#chart-regions svg", "table.flags-table")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium is not installed at /usr/bin/chromium (Debian: apt-get install -y chromium; "
           ".ci/run does it where apt-get is available)")


@pytest.fixture
def report_html(sample_db, db_path: Path, tmp_path: Path) -> Path:  # noqa: F811 (the imported fixture)
    return write_report(settings_for(db_path), WEEK, tmp_path / "report").html


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright  # a dev dependency; only this test needs it

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _open(browser, html: Path, width: int, height: int):
    """A page showing the report, with the console errors, page errors and requests it made."""
    page = browser.new_page(viewport={"width": width, "height": height})
    seen = {"errors": [], "requests": []}
    page.on("console", lambda message: message.type == "error" and seen["errors"].append(message.text))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.goto(html.as_uri(), wait_until="load")
    return page, seen


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_report_renders_in_chromium(browser, report_html: Path, width: int, height: int):
    page, seen = _open(browser, report_html, width, height)
    try:
        for selector in KEY_ELEMENTS:
            element = page.locator(selector).first
            assert element.is_visible(), f"{selector} is not visible at {width} px"
            box = element.bounding_box()
            assert box and box["width"] > 0 and box["x"] + box["width"] <= width + 1, \
                f"{selector} sticks out of a {width} px wide screen: {box}"
        assert page.locator("#headline h2").inner_text() == "Headline"
        assert "область" in page.locator("#opportunities-table").inner_text()
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll_width <= inner_width, f"the page scrolls sideways at {width} px ({scroll_width} px wide)"
        assert seen["errors"] == []
        assert [url for url in seen["requests"] if not url.startswith("file://")] == []
    finally:
        page.close()
