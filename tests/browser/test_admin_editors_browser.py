"""The admin UI's editors in a real browser, against a real `offerbase serve`, offline: an editor
builds a placement, a rule (checked as it is typed), two offers and a collection through the
forms alone; an approver approves the offers and puts a decision live; a viewer can read but
not change. Then markup stored in every text field of every kind (through the API) runs on no
list and no editor.

Debian's Chromium (`/usr/bin/chromium`) driven by Playwright; no browser download. Without it
the tests are skipped with a notice, except in CI (`CI=true`), where they must run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

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

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from admin_evil import EVIL, ORDER, evil_body  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")  # one browser at a time on the two cores

PASSWORD = "a browser test passphrase"
ROLES = {"viewer": "viewer@example.com", "editor": "editor@example.com"}
ROLES |= {"approver": "approver@example.com", "admin": "admin@example.com"}
# A user whose email is markup (the form's email field would not take it: the CLI does).
EVIL_EMAIL = '<script>window.owned="email"</script>@evil.example'
WEB = "https://ns.adobe.com/xdm/channel-types/web"
SLUGS = {
    "placement": "placements",
    "tag": "collection-qualifiers",
    "decision-rule": "decision-rules",
    "ranking-formula": "ranking-formulas",
    "personalized-offer": "offers",
    "fallback-offer": "fallback-offers",
    "collection": "collections",
    "decision": "decisions",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("admin-editors") / "data"
    env = clean_environment(data_dir)
    for role, email in ROLES.items():
        create_user(env, email, role, PASSWORD)
    create_user(env, EVIL_EMAIL, "viewer", PASSWORD)
    with serving("--log-level", "warning", env=env) as url:
        credential = json.loads((data_dir / "credentials.json").read_text())
        yield url, token_headers(url, credential)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def _page(browser: Browser, base: str, refused: list[str], dialogs: list[str]) -> Page:
    page = offline(
        browser.new_context(viewport={"width": 1280, "height": 900}).new_page(), base, refused
    )
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return page


def _sign_in(page: Page, base: str, role: str) -> None:
    page.goto(f"{base}/admin/sign-in")
    page.get_by_label("Email").fill(ROLES[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/sandbox/prod/offers")


def _field(page: Page, pointer: str) -> object:
    return page.locator(f'[name="{pointer}"]')


def _new(page: Page, link: str, button: str) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role(
        "link", name=link, exact=True
    ).click()
    page.get_by_role("link", name=button).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(button)
    # A click does not wait for the page's load event, and htmx (a deferred script) binds the
    # as-you-type checks only then: typing earlier would be typing into a plain textarea.
    page.wait_for_load_state("load")


def _create(page: Page) -> str:
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    return page.url


def test_build_a_catalog_approve_and_go_live_through_the_forms(
    server: tuple[str, dict[str, str]], chromium: Browser
) -> None:
    base, headers = server
    refused: list[str] = []
    dialogs: list[str] = []
    page = _page(chromium, base, refused, dialogs)
    _sign_in(page, base, "editor")

    _new(page, "Placements", "New placement")
    page.get_by_label("Name (required)").fill("Home banner")
    page.locator('[name="/channel"]').fill(WEB)
    page.locator('[name="/componentType"]').select_option("html")
    _create(page)

    _new(page, "Decision rules", "New decision rule")
    page.locator('[name="/name"]').fill("Grown-ups")
    pql = page.locator('[name="/condition/value"]')
    pql.fill("person.age >")
    expect(page.locator("#pql-check")).to_contain_text("Line 1, column")
    pql.fill("person.age > 20")
    expect(page.locator("#pql-check")).to_have_text("The PQL is valid.")
    # Tested against a stored profile before it is saved (the rule as typed).
    stored = httpx.put(
        f"{base}/data/core/ups/profiles/ECID/adult-1", headers=headers, json={"person": {"age": 42}}
    )
    assert stored.status_code in (200, 201), stored.text
    page.get_by_label("Identity", exact=True).fill("adult-1")
    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.locator("#rule-test-result")).to_contain_text("The profile qualifies")
    _create(page)

    for name in ("Spring sale", "Loyalty bonus"):
        _new(page, "Offers", "New offer")
        page.locator('[name="/name"]').fill(name)
        page.get_by_text("Add representation").click()
        page.get_by_text("Add component").first.click()
        page.locator('[name="/representations/0/channel"]').fill(WEB)
        page.locator('[name="/representations/0/placement"]').select_option(label="Home banner")
        page.locator('[name="/representations/0/components/0/type"]').select_option("html")
        page.locator('[name="/representations/0/components/0/format"]').fill("text/html")
        content = f"<h2>{name}</h2><script>window.owned = 1</script>"
        page.locator('[name="/representations/0/components/0/content"]').fill(content)
        eligibility = page.locator('[name="/selectionConstraint/profileConstraintType"]')
        eligibility.select_option("eligibilityRule")
        page.locator('[name="/selectionConstraint/eligibilityRule"]').select_option(
            label="Grown-ups"
        )
        page.locator('[name="/rank/priority"]').fill("5")
        _create(page)
        # The HTML preview is a sandboxed frame: its markup shows, its script never runs.
        frame = page.frame_locator("iframe.preview")
        expect(frame.get_by_role("heading", name=name)).to_be_visible()
        assert page.locator("iframe.preview").get_attribute("sandbox") == ""

    _new(page, "Collections", "New collection")
    page.locator('[name="/name"]').fill("Everything")
    page.locator('[name="/filterType"]').select_option("offers")
    page.get_by_role("checkbox", name="Spring sale").check()
    page.get_by_role("checkbox", name="Loyalty bonus").check()
    _create(page)
    assert page.evaluate("window.owned") is None

    # An editor may not put a decision live: the server refuses it.
    _new(page, "Decisions", "New decision")
    page.locator('[name="/name"]').fill("Homepage")
    page.locator('[name="/status"]').select_option("live")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("main")).to_contain_text("needs approver")
    page.get_by_role("button", name="Sign out").click()

    # The approver approves both offers and puts the decision live.
    _sign_in(page, base, "approver")
    for name in ("Spring sale", "Loyalty bonus"):
        page.get_by_role("button", name=f"Approve {name}").click()
        page.wait_for_load_state()
    expect(page.locator("#results tbody tr", has_text="approved")).to_have_count(2)
    _new(page, "Decisions", "New decision")
    page.locator('[name="/name"]').fill("Homepage")
    page.locator('[name="/status"]').select_option("live")
    page.get_by_text("Add criterion").click()
    page.get_by_role("group", name="Placements").get_by_role("checkbox", name="Home banner").check()
    page.locator('[name="/criteria/0/optionSelection/filter"]').select_option(label="Everything")
    page.locator('[name="/criteria/0/rank/order/orderEvaluationType"]').select_option("static")
    decision_url = _create(page)
    decision_id = decision_url.split("/edit/")[1].split("?")[0]
    stored = httpx.get(f"{base}/data/core/dps/offer-decisions/{decision_id}", headers=headers)
    assert stored.status_code == 200, stored.text
    assert stored.json()["status"] == "live"
    assert stored.json()["lastModifiedBy"] == ROLES["approver"]
    page.get_by_role("button", name="Sign out").click()

    # A viewer reads the decision but is offered no change, and approves nothing.
    _sign_in(page, base, "viewer")
    assert page.get_by_role("button", name="Approve").count() == 0
    assert page.get_by_role("link", name="New offer").count() == 0
    page.goto(decision_url.split("?")[0])
    expect(page.locator("main")).to_contain_text("may read this, not change it")
    assert page.locator('[name="/name"]').is_disabled()
    assert page.get_by_role("button", name="Save").count() == 0
    page.context.close()
    assert dialogs == []
    assert refused == []


def test_markup_in_every_text_field_runs_on_no_list_and_no_editor(
    server: tuple[str, dict[str, str]], chromium: Browser
) -> None:
    base, headers = server
    api = f"{base}/data/core/dps"
    paths = {
        "placement": "placements",
        "tag": "tags",
        "decision-rule": "offer-rules",
        "ranking-formula": "ranking-formulas",
        "personalized-offer": "offers?offer-type=personalized",
        "fallback-offer": "offers?offer-type=fallback",
        "collection": "offer-collections",
        "decision": "offer-decisions",
    }
    ids: dict[str, str] = {}
    for kind in ORDER:
        response = httpx.post(f"{api}/{paths[kind]}", headers=headers, json=evil_body(kind, ids))
        assert response.status_code == 201, response.text
        ids[kind] = response.json()["id"]
    refused: list[str] = []
    dialogs: list[str] = []
    page = _page(chromium, base, refused, dialogs)
    _sign_in(page, base, "approver")
    for kind, entity_id in ids.items():
        listing = f"{base}/admin/sandbox/prod/{SLUGS[kind]}"
        for url in (listing, f"{listing}/edit/{quote(entity_id, safe='')}"):
            page.goto(url)
            expect(page.locator("main")).to_contain_text("<script>window.owned")
            for frame in page.frames:
                assert frame.evaluate("window.owned") is None, (url, frame.url)
            scripts = page.eval_on_selector_all("script", "nodes => nodes.map(n => n.src)")
            assert scripts == [f"{base}/admin/static/htmx.min.js"], url
            images = page.eval_on_selector_all("img", "nodes => nodes.map(n => n.src)")
            assert all(src.startswith("https://") for src in images), (url, images)
    page.context.close()
    assert dialogs == []
    assert refused == []


def _nothing_ran(page: Page, base: str) -> None:
    for frame in page.frames:
        assert frame.evaluate("window.owned") is None, (page.url, frame.url)
    scripts = page.eval_on_selector_all("script", "nodes => nodes.map(n => n.src)")
    assert scripts == [f"{base}/admin/static/htmx.min.js"], page.url
    assert page.eval_on_selector_all("img", "nodes => nodes.length") == 0, page.url


def test_an_admin_manages_users_and_credentials_through_the_forms(
    server: tuple[str, dict[str, str]], chromium: Browser
) -> None:
    """Users and Credentials, by their labels: a user is created, given another role and
    deleted; a credential with markup in its name is created (its secret shown once, and it
    works), rotated and revoked (then it does not). Stored markup runs on neither page."""
    base, _headers = server
    refused: list[str] = []
    dialogs: list[str] = []
    page = _page(chromium, base, refused, dialogs)
    _sign_in(page, base, "admin")
    sections = page.get_by_role("navigation", name="Sections")
    sections.get_by_role("link", name="Users", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    expect(page.locator("main")).to_contain_text('<script>window.owned="email"</script>')
    _nothing_ran(page, base)

    new = page.locator("section", has=page.get_by_role("heading", name="New user"))
    new.get_by_label("Email (the sign-in name)").fill("newcomer@example.com")
    new.get_by_label("Role").select_option("editor")
    new.get_by_label("prod").check()
    new.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    new.get_by_label("Password again").fill(PASSWORD + "?")
    new.get_by_role("button", name="New user").click()
    expect(page.locator("#user-password_again-error")).to_have_text("The two passwords differ.")
    new.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    new.get_by_label("Password again").fill(PASSWORD)
    new.get_by_role("button", name="New user").click()
    row = page.locator("tbody tr", has_text="newcomer@example.com")
    expect(row).to_contain_text("prod")
    row.get_by_label("Role", exact=True).select_option("approver")
    row.get_by_role("button", name="Change the role of newcomer@example.com").click()
    expect(row.get_by_label("Role", exact=True)).to_have_value("approver")
    row.get_by_role("button", name="Delete newcomer@example.com").click()
    expect(page.locator("tbody tr", has_text="newcomer@example.com")).to_have_count(0)

    sections.get_by_role("link", name="Credentials", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Credentials")
    page.get_by_label("Name (a label for this list)").fill(f"Evil {EVIL}")
    page.get_by_label("Sandbox it may use").select_option("prod")
    page.get_by_role("button", name="New credential").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be shown again")
    secret = page.get_by_label("Client secret").input_value()
    client_id = page.locator("dd code").first.inner_text()
    _nothing_ran(page, base)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    assert httpx.post(f"{base}/ims/token/v3", data=form).status_code == 200
    page.get_by_role("link", name="Back to the credentials").click()
    expect(page.locator("main")).to_contain_text("<script>window.owned")
    assert secret not in page.content()
    _nothing_ran(page, base)
    row = page.locator("tbody tr", has_text=client_id)
    row.get_by_role("button", name="Rotate").click()
    rotated = page.get_by_label("Client secret").input_value()
    assert rotated != secret
    assert httpx.post(f"{base}/ims/token/v3", data=form).status_code == 401
    page.get_by_role("link", name="Back to the credentials").click()
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    form["client_secret"] = rotated
    assert httpx.post(f"{base}/ims/token/v3", data=form).status_code == 401
    page.get_by_role("button", name="Sign out").click()

    # A viewer has no link to either page, and is refused them.
    _sign_in(page, base, "viewer")
    assert page.get_by_role("link", name="Users").count() == 0
    assert page.get_by_role("link", name="Credentials").count() == 0
    assert page.goto(f"{base}/admin/sandbox/prod/users").status == 403  # type: ignore[union-attr]
    page.context.close()
    assert dialogs == []
    assert refused == []
