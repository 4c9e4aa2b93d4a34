"""The admin UI in a real browser, against a real `offerbase serve`, with every request to another
host refused: sign in, see the Offers list, search it (htmx, vendored), reach "Offers" with the
keyboard alone, and markup stored in an offer's text fields is shown as text and never runs.
At 1280 and 390 pixels wide the page does not scroll sideways.

Debian's Chromium (`/usr/bin/chromium`) driven by Playwright; no browser download. Without it
the tests are skipped with a notice, except in CI (`CI=true`), where they must run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from real_server import (
    clean_environment,
    create_user,
    offline,
    require_chromium,
    serving,
    token_headers,
)

CHROMIUM = require_chromium()

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")  # one browser at a time on the two cores

EMAIL = "marketer@example.com"  # a viewer
APPROVER = "approver@example.com"
PASSWORD = "a browser test passphrase"
WEB = "https://ns.adobe.com/xdm/channel-types/web"
# Markup that would run if it were rendered unescaped: each sets a flag the test reads.
EVIL = '<script>window.owned = "script"</script><img src=x onerror="window.owned = \'img\'">'


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("admin-ui") / "data"
    env = clean_environment(data_dir)
    create_user(env, EMAIL, "viewer", PASSWORD, "prod")
    create_user(env, APPROVER, "approver", PASSWORD)
    with serving("--log-level", "warning", env=env) as url:
        credential = json.loads((data_dir / "credentials.json").read_text())
        _store_offers(url, token_headers(url, credential))
        yield url


def _store_offers(base: str, headers: dict[str, str]) -> None:
    """Through the Offer Library API: a placement, two plain offers and one with markup in every
    text field it has (name, characteristics, the representation's content and link)."""
    api = f"{base}/data/core/dps"
    placement = httpx.post(
        f"{api}/placements",
        headers=headers,
        json={"name": "Home banner", "channel": WEB, "componentType": "html"},
    )
    assert placement.status_code == 201, placement.text
    placement_id = placement.json()["id"]
    for name, status in (("Spring sale", "approved"), ("Loyalty bonus", "draft")):
        response = httpx.post(
            f"{api}/offers?offer-type=personalized",
            headers=headers,
            json={"name": name, "status": status, "rank": {"priority": 1}},
        )
        assert response.status_code == 201, response.text
    evil = {
        "name": EVIL,
        "status": "draft",
        "characteristics": {"note": EVIL, EVIL[:30]: EVIL},
        "representations": [
            {
                "channel": WEB,
                "placement": placement_id,
                "components": [
                    {
                        "type": "html",
                        "format": "text/html",
                        "content": EVIL,
                        "deliveryURL": "https://example.com/x",
                        "linkURL": "https://example.com/y",
                    }
                ],
            }
        ],
    }
    response = httpx.post(f"{api}/offers?offer-type=personalized", headers=headers, json=evil)
    assert response.status_code == 201, response.text


def _sign_in(page: Page, base: str, email: str = EMAIL) -> None:
    page.goto(f"{base}/admin")
    page.wait_for_url("**/admin/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/sandbox/prod/offers")


def test_sign_in_see_and_search_offers_and_stored_markup_never_runs(
    base: str, tmp_path: Path
) -> None:
    refused: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = offline(browser.new_page(viewport={"width": 1280, "height": 900}), base, refused)
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            _sign_in(page, base)
            assert page.get_by_role("heading", name="Offers").is_visible()
            # A viewer is offered no state-changing action (the server refuses it too:
            # tests/api/test_admin_ui.py).
            assert page.get_by_role("button", name="Approve").count() == 0
            rows = page.locator("#results tbody tr")
            assert rows.count() == 3
            # The markup is on the page as text, and nothing of it ran or became an element.
            assert page.get_by_text(EVIL, exact=False).count() >= 1
            assert page.evaluate("window.owned") is None
            assert page.locator("img").count() == 0
            scripts = page.eval_on_selector_all("script", "nodes => nodes.map(n => n.src)")
            assert scripts == [f"{base}/admin/static/htmx.min.js"]
            page.screenshot(path=str(tmp_path / "offers-1280.png"))

            # htmx: typing in the search box replaces the results, not the page.
            page.evaluate("window.samePage = true")
            page.get_by_label("Search by name").fill("loyal")
            # (A locator waits without evaluating strings, which the page's CSP forbids.)
            expect(rows).to_have_count(1)
            assert (
                page.locator("#results tbody tr td.name").inner_text().startswith("Loyalty bonus")
            )
            assert page.evaluate("window.samePage") is True  # no full navigation happened
            assert "q=loyal" in page.url  # and the address says what is shown

            # Keyboard only: from another page, Tab to the "Offers" link and follow it.
            page.goto(f"{base}/admin/sandbox/prod/placements")
            expect(page.get_by_role("heading", name="Placements")).to_be_visible()
            for _ in range(40):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.textContent.trim()") == "Offers":
                    break
            else:
                pytest.fail("Tab never reached the Offers link")
            page.keyboard.press("Enter")
            page.wait_for_url("**/admin/sandbox/prod/offers")

            # At 1280 and at 390 px the page itself never scrolls sideways (the table scrolls
            # inside its own region), and the navigation stays reachable.
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 844})
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"{width} px: the page scrolls sideways by {overflow} px"
                assert page.get_by_role("link", name="Offers", exact=True).is_visible()
                assert page.get_by_role("button", name="Sign out").is_visible()
            page.screenshot(path=str(tmp_path / "offers-390.png"), full_page=True)
        finally:
            browser.close()
    assert dialogs == []
    assert refused == []


def test_an_approver_approves_a_draft_offer(base: str) -> None:
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = offline(browser.new_page(viewport={"width": 1280, "height": 900}), base, refused)
            _sign_in(page, base, APPROVER)
            page.get_by_label("Search by name").fill("loyalty")
            row = page.locator("#results tbody tr")
            expect(row).to_have_count(1)
            expect(row).to_contain_text("draft")
            page.get_by_role("button", name="Approve Loyalty bonus").click()
            page.wait_for_load_state()
            row = page.locator("#results tbody tr", has_text="Loyalty bonus")
            expect(row).to_contain_text("approved")
            expect(row.get_by_role("button")).to_have_count(0)  # approved: nothing to approve
        finally:
            browser.close()
    assert refused == []
