"""`/docs` (Swagger UI) and `/redoc` render in a real browser with no network beyond the server:
every request to another host is refused, and the page must still draw the API.

Debian's Chromium (`/usr/bin/chromium`) driven by Playwright; no browser download. Without it
the tests are skipped with a notice, except in CI (`CI=true`), where they must run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from real_server import clean_environment, offline, require_chromium, serving

DECORATIVE = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
CHROMIUM = require_chromium()

from playwright.sync_api import sync_playwright  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")  # one browser at a time on the two cores


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("docs") / "data"
    with serving("--log-level", "warning", env=clean_environment(data_dir)) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        # Swagger UI draws the title and one block per operation.
        ("/docs", ".swagger-ui .information-container .title"),
        # ReDoc draws the title in its API info section.
        ("/redoc", "redoc h1"),
    ],
)
def test_the_api_docs_render_offline(base: str, path: str, rendered: str, tmp_path: Path) -> None:
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = offline(browser.new_page(viewport={"width": 1280, "height": 900}), base, refused)
            page.goto(base + path)
            title = page.wait_for_selector(rendered, timeout=30_000)
            assert title is not None
            assert "Offerbase" in title.inner_text()
            if path == "/docs":
                page.wait_for_selector(".opblock", timeout=30_000)
                assert page.locator(".opblock").count() > 20
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    # Nothing the page needs came from elsewhere. ReDoc's bundle hard-codes one decorative image,
    # its "API docs by Redocly" logo in the sidebar footer, which offline simply does not show.
    assert [url for url in refused if url not in DECORATIVE] == []
    # A blank 1280x900 page compresses to a few KB; a drawn one is far larger.
    assert shot.stat().st_size > 30_000
