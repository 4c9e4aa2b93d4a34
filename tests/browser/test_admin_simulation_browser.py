"""The Simulation page in a real browser, against a real `offerbase serve`, offline: a viewer
reaches every section of the navigation with the keyboard alone, runs a simulation, and the trace
shows a dropped offer with its reason; at 390 px the page does not scroll sideways.

Debian's Chromium (`/usr/bin/chromium`) driven by Playwright, as tests/browser/
test_admin_ui_browser.py; skipped without it, except in CI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

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

pytestmark = pytest.mark.xdist_group("browser")

EMAIL = "viewer@example.com"
PASSWORD = "a browser test passphrase"
WEB = "https://ns.adobe.com/xdm/channel-types/web"
NAVIGATION = [
    "Offers",
    "Fallback offers",
    "Placements",
    "Collections",
    "Decision rules",
    "Ranking formulas",
    "Decisions",
    "Simulation",
    "Reports",
    "Profiles",
]
DATES = {"startDate": "2020-01-01T00:00:00Z", "endDate": "2040-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("admin-simulation") / "data"
    env = clean_environment(data_dir)
    create_user(env, EMAIL, "viewer", PASSWORD)
    with serving("--log-level", "warning", env=env) as url:
        credential = json.loads((data_dir / "credentials.json").read_text())
        _store_catalog(url, token_headers(url, credential))
        yield url


def _store_catalog(base: str, headers: dict[str, str]) -> None:
    """A live decision over an approved offer and a draft one (dropped: its status)."""
    api = f"{base}/data/core/dps"

    def post(path: str, entity_id: str, body: dict[str, object]) -> None:
        query = "?offer-type=personalized" if path == "offers" else ""
        response = httpx.post(f"{api}/{path}/{entity_id}{query}", headers=headers, json=body)
        assert response.status_code == 201, response.text

    post("placements", "home", {"name": "Home banner", "channel": WEB, "componentType": "html"})
    rep = {
        "channel": WEB,
        "placement": "home",
        "components": [{"type": "html", "format": "text/html", "content": "<p>hi</p>"}],
    }
    for oid, name, status in (
        ("spring", "Spring sale", "approved"),
        ("bonus", "Loyalty bonus", "draft"),
    ):
        post(
            "offers",
            oid,
            {
                "name": name,
                "status": status,
                "rank": {"priority": 1},
                "selectionConstraint": {**DATES, "profileConstraintType": "none"},
                "representations": [rep],
            },
        )
    post(
        "offer-collections",
        "all",
        {"name": "All offers", "filterType": "offers", "ids": ["spring", "bonus"]},
    )
    post(
        "offer-decisions",
        "home-decision",
        {
            "name": "Home page",
            "status": "live",
            **DATES,
            "criteria": [{"optionSelection": {"filter": "all"}}],
        },
    )


def _focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.textContent.trim()"))


def test_keyboard_only_a_viewer_simulates_and_sees_why_an_offer_was_dropped(base: str) -> None:
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = offline(browser.new_page(viewport={"width": 1280, "height": 900}), base, refused)
            page.goto(f"{base}/admin")
            page.wait_for_url("**/admin/sign-in")
            page.get_by_label("Email").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url("**/admin/sandbox/prod/offers")

            # Tab reaches every section link, in the navigation's order.
            reached: list[str] = []
            for _ in range(60):
                page.keyboard.press("Tab")
                text = _focused(page)
                if text in NAVIGATION and text not in reached:
                    reached.append(text)
                if len(reached) == len(NAVIGATION):
                    break
            assert reached == NAVIGATION
            # Back to "Simulation" (Shift+Tab) and follow it.
            for _ in range(5):
                if _focused(page) == "Simulation":
                    break
                page.keyboard.press("Shift+Tab")
            assert _focused(page) == "Simulation"
            page.keyboard.press("Enter")
            page.wait_for_url("**/admin/sandbox/prod/simulation")

            # The form, with the keyboard: labels name every control.
            page.get_by_label("Identity of a stored profile").focus()
            page.keyboard.type("ann@example.com")
            page.get_by_label("Live decision").select_option("home-decision")
            page.get_by_role("button", name="Simulate").focus()
            page.keyboard.press("Enter")
            page.wait_for_load_state()

            results = page.get_by_role("region", name="Candidates for Home banner")
            expect(results).to_be_visible()
            chosen = results.locator("tr", has_text="Spring sale")
            expect(chosen).to_contain_text("Chosen")
            dropped = results.locator("tr", has_text="Loyalty bonus")
            expect(dropped).to_contain_text("Dropped")
            expect(dropped).to_contain_text("Status:")
            expect(dropped).to_contain_text("draft")
            expect(page.get_by_text("Proposed: Spring sale")).to_be_visible()

            page.set_viewport_size({"width": 390, "height": 844})
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"390 px: the page scrolls sideways by {overflow} px"
        finally:
            browser.close()
    assert refused == []
