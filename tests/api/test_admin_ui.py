"""The admin UI (/admin) through HTTP: sign-in, the session cookie, CSRF, the throttle, the
Offers page (search, filter, sort, paging) and tenancy: a user sees its own organization's
sandboxes and offers only, through every page.

Users are created through the store with one password hash made once (scrypt is ~0.4 s), and
sign in through the real form, so every sign-in runs the real check.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from html import unescape
from typing import Any

import httpx
import pytest
from factories import Api

from conftest import Tenant, make_tenant
from offerbase.api.admin_ui import routes
from offerbase.api.deps import services_of
from offerbase.store import tenants, users

PASSWORD = "correct horse battery staple"
SECTIONS = [
    "Offers",
    "Fallback offers",
    "Placements",
    "Collections",
    "Collection qualifiers",
    "Decision rules",
    "Ranking formulas",
    "Ranking strategies",
    "Decisions",
    "Simulation",
    "Reports",
    "Profiles",
    "Datastreams",
]
SLUGS = [
    "offers",
    "fallback-offers",
    "placements",
    "collections",
    "collection-qualifiers",
    "decision-rules",
    "ranking-formulas",
    "ranking-strategies",
    "decisions",
    "simulation",
    "reports",
    "profiles",
    "datastreams",
]


@cache
def password_hash() -> str:
    return users.hash_password(PASSWORD)


async def add_user(
    app: Any, org: str, role: str = "viewer", sandboxes: list[str] | None = None
) -> str:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    async with services_of(app).db.write() as conn:
        await users.create_user(
            conn, org, email, role, sandboxes, password_hash(), now=datetime.now(UTC)
        )
    return email


def browser(app: Any, base: str = "http://offerbase.test") -> httpx.AsyncClient:
    """A client with its own cookie jar: one person's browser."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/admin/sign-in", data={"email": email, "password": password})


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def text_of(page: str) -> str:
    """The page's text with tags removed (entities kept: `&lt;` stays visible as such)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.fixture
async def person(app: Any, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """A viewer of the tenant's organization (every sandbox), signed in."""
    email = await add_user(app, tenant.org)
    async with browser(app) as http:
        response = await sign_in(http, email)
        assert response.status_code == 303, response.text
        yield http


# -- sign-in -------------------------------------------------------------------------------------


async def test_the_sign_in_page_has_labelled_fields_and_a_button(client: httpx.AsyncClient) -> None:
    page = await client.get("/admin/sign-in")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'<label for="email">Email</label>', html)
    assert re.search(r'<label for="password">Password</label>', html)
    assert re.search(r'<input id="email" name="email" type="email"', html)
    assert re.search(r'<input id="password" name="password" type="password"', html)
    assert '<button type="submit">Sign in</button>' in html
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


async def test_pages_need_a_session(client: httpx.AsyncClient) -> None:
    for path in ["/admin", "/admin/sandbox/prod/offers", "/admin/sandbox/prod/placements"]:
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/admin/sign-in"
    fragment = await client.get("/admin/sandbox/prod/offers", headers={"HX-Request": "true"})
    assert fragment.status_code == 401
    assert fragment.headers["hx-redirect"] == "/admin/sign-in"


async def test_sign_in_sets_a_hardened_session_cookie(app: Any, tenant: Tenant) -> None:
    email = await add_user(app, tenant.org)
    async with browser(app) as http:
        response = await sign_in(http, email.upper())  # emails are case-insensitive
        assert response.status_code == 303
        assert response.headers["location"] == "/admin"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("offerbase_admin=")
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "path", "max-age"} <= flags
        assert "secure" not in flags  # plain HTTP: a Secure cookie would never come back
        assert "samesite=lax" in cookie.lower()
        assert "path=/admin" in cookie.lower()
        assert "max-age=28800" in cookie.lower()
        home = await http.get("/admin")
        assert home.status_code == 303
        assert home.headers["location"] == "/admin/sandbox/dev/offers"  # first by name
    async with browser(app, "https://offerbase.test") as https:
        response = await sign_in(https, email)
        assert "secure" in response.headers["set-cookie"].lower()


async def test_a_wrong_password_or_unknown_email_is_refused_alike(
    app: Any, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    email = await add_user(app, tenant.org)
    wrong = await sign_in(client, email, "not the password at all")
    unknown = await sign_in(client, "nobody@example.com")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "The email or the password is wrong." in response.text
        assert "set-cookie" not in response.headers
    assert f'value="{email}"' in wrong.text  # the form keeps the email, never the password
    assert PASSWORD not in wrong.text


async def test_sign_in_is_throttled_after_failures_even_for_the_right_password(
    make_app: Callable[..., Any], tenant: Tenant
) -> None:
    app = make_app(admin_sign_in_failures_per_email=2)
    email = await add_user(app, tenant.org)
    async with browser(app) as http:
        for _ in range(2):
            assert (await sign_in(http, email, "a wrong password!")).status_code == 401
        throttled = await sign_in(http, email)
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert "Too many failed sign-ins" in throttled.text
        assert "set-cookie" not in throttled.headers
        # Another email from the same address is not locked out by these failures.
        other = await add_user(app, tenant.org)
        assert (await sign_in(http, other)).status_code == 303


async def test_a_sign_in_from_another_site_is_refused(app: Any, tenant: Tenant) -> None:
    email = await add_user(app, tenant.org)
    async with browser(app) as http:
        response = await http.post(
            "/admin/sign-in",
            data={"email": email, "password": PASSWORD},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403
        assert "set-cookie" not in response.headers


async def test_a_large_or_odd_form_is_refused_or_read_as_empty(client: httpx.AsyncClient) -> None:
    huge = await client.post("/admin/sign-in", data={"email": "a@b.c", "password": "x" * 20_000})
    assert huge.status_code == 413
    assert "larger than 16384 bytes" in huge.text
    as_json = await client.post("/admin/sign-in", json={"email": "a@b.c", "password": "x"})
    assert as_json.status_code == 401  # not a form: no email, no password
    broken = await client.post(
        "/admin/sign-in",
        content=b"email=%ff%fe&password=\xff",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert broken.status_code == 401


async def test_a_forged_or_edited_cookie_is_no_session(person: httpx.AsyncClient) -> None:
    value = person.cookies["offerbase_admin"]
    token, _, mac = value.rpartition(".")
    flipped = mac[:-2] + ("B" if mac[-2] == "A" else "A") + mac[-1]
    for forged in (f"{token}x.{mac}", f"{token}.{flipped}", "nonsense", token):
        async with browser(person._transport.app) as http:  # type: ignore[attr-defined]
            http.cookies.set("offerbase_admin", forged, path="/admin")
            assert (await http.get("/admin/sandbox/prod/offers")).status_code == 303


# -- sign-out, CSRF, revocation, expiry --------------------------------------------------------


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    person: httpx.AsyncClient,
) -> None:
    page = await person.get("/admin/sandbox/prod/offers")
    assert page.status_code == 200
    token = csrf_of(page.text)
    cookie = person.cookies["offerbase_admin"]
    for refused in ({}, {"csrf": "wrong"}, {"csrf": token[:-1]}):
        response = await person.post("/admin/sign-out", data=refused)
        assert response.status_code == 403, refused
        assert "security token" in response.text
    assert (await person.get("/admin/sandbox/prod/offers")).status_code == 200  # still in
    cross_site = await person.post(
        "/admin/sign-out", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    # The htmx header form of the token is accepted too.
    response = await person.post("/admin/sign-out", headers={"X-CSRF-Token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/sign-in"
    assert (await person.get("/admin/sandbox/prod/offers")).status_code == 303
    # The old cookie, replayed, is no session any more: it was revoked server-side.
    person.cookies.set("offerbase_admin", cookie, path="/admin")
    assert (await person.get("/admin/sandbox/prod/offers")).status_code == 303


async def test_deleting_a_user_ends_its_sessions_and_a_new_role_applies_at_once(
    app: Any, tenant: Tenant
) -> None:
    email = await add_user(app, tenant.org)
    async with browser(app) as http:
        assert (await sign_in(http, email)).status_code == 303
        assert "(viewer," in (await http.get("/admin/sandbox/prod/offers")).text
        async with services_of(app).db.write() as conn:
            await users.set_role(conn, tenant.org, email, "approver")
        assert "(approver," in (await http.get("/admin/sandbox/prod/offers")).text
        async with services_of(app).db.write() as conn:
            assert await users.delete_user(conn, tenant.org, email)
        assert (await http.get("/admin/sandbox/prod/offers")).status_code == 303


async def test_a_session_expires_on_the_server(
    make_app: Callable[..., Any], tenant: Tenant
) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    app = make_app(clock=lambda: now[0], admin_session_seconds=600)
    email = await add_user(app, tenant.org)
    async with browser(app) as http:
        assert (await sign_in(http, email)).status_code == 303
        now[0] += timedelta(seconds=599)
        assert (await http.get("/admin/sandbox/prod/offers")).status_code == 200
        now[0] += timedelta(seconds=2)
        assert (await http.get("/admin/sandbox/prod/offers")).status_code == 303


# -- the shell -----------------------------------------------------------------------------------


async def test_the_layout_links_every_section_and_each_answers(
    person: httpx.AsyncClient,
) -> None:
    page = await person.get("/admin/sandbox/prod/offers")
    links = re.findall(
        r'<li><a href="/admin/sandbox/prod/([a-z-]+)"[^>]*>([^<]+)</a></li>', page.text
    )
    assert links == list(zip(SLUGS, SECTIONS, strict=True))
    assert 'aria-current="page">Offers<' in page.text
    for slug, name in zip(SLUGS[1:], SECTIONS[1:], strict=True):
        response = await person.get(f"/admin/sandbox/prod/{slug}")
        assert response.status_code == 200, slug
        assert f"<h1>{name}</h1>" in response.text
        built = slug in routes.BUILT
        assert ("This page is not built yet." in response.text) is not built, slug
    assert (await person.get("/admin/sandbox/prod/nonsense")).status_code == 404


async def test_the_sandbox_switcher(person: httpx.AsyncClient) -> None:
    page = (await person.get("/admin/sandbox/prod/placements")).text
    switcher = page.split('id="sandbox-switch"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]+)"', switcher) == ["dev", "prod"]
    assert '<option value="prod" selected>' in page
    response = await person.get("/admin/switch", params={"sandbox": "dev", "section": "placements"})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/sandbox/dev/placements"


async def test_a_user_limited_to_a_sandbox_cannot_open_another(app: Any, tenant: Tenant) -> None:
    email = await add_user(app, tenant.org, sandboxes=["prod"])
    async with browser(app) as http:
        assert (await sign_in(http, email)).status_code == 303
        page = await http.get("/admin/sandbox/prod/offers")
        assert re.findall(r'<option value="([^"]+)"', page.text)[0] == "prod"
        assert '<option value="dev"' not in page.text
        for path in ["/admin/sandbox/dev/offers", "/admin/sandbox/dev/placements"]:
            response = await http.get(path)
            assert response.status_code == 404
            assert "You have no sandbox named &#39;dev&#39;." in response.text


# -- the Offers page -----------------------------------------------------------------------------


async def test_offers_search_filter_sort_and_pages(
    client: httpx.AsyncClient, tenant: Tenant, person: httpx.AsyncClient
) -> None:
    api = Api(client, tenant)
    for index in range(30):
        status = "approved" if index % 3 == 0 else "draft"
        await api.create(
            "personalized-offer",
            name=f"Summer {index:02d}",
            status=status,
            rank={"priority": index},
        )
    await api.create("personalized-offer", name="Winter (a+b)*", status="archived")
    await api.create("fallback-offer", name="Summer fallback")  # not an offer of this page

    def names(html: str) -> list[str]:
        return re.findall(r'<td class="name"><a href="[^"]+">([^<]*)</a><br>', html)

    first = await person.get("/admin/sandbox/prod/offers", params={"sort": "name"})
    assert "31 offers, 25 on this page." in text_of(first.text)
    assert names(first.text) == [f"Summer {index:02d}" for index in range(25)]
    next_href = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', first.text)
    assert next_href
    second = await person.get(next_href.group(1).replace("&amp;", "&"))
    assert names(second.text) == [
        *(f"Summer {index:02d}" for index in range(25, 30)),
        "Winter (a+b)*",
    ]
    assert 'rel="prev">Previous page</a>' in second.text
    assert 'rel="next"' not in second.text

    approved = await person.get(
        "/admin/sandbox/prod/offers", params={"status": "approved", "sort": "priority"}
    )
    assert names(approved.text) == [
        f"Summer {index:02d}" for index in (27, 24, 21, 18, 15, 12, 9, 6, 3, 0)
    ]
    # The search is a literal, case-insensitive "contains": regex characters mean themselves.
    found = await person.get("/admin/sandbox/prod/offers", params={"q": "(A+B)*"})
    assert names(found.text) == ["Winter (a+b)*"]
    ten_to_nineteen = await person.get(
        "/admin/sandbox/prod/offers", params={"q": "mer 1", "sort": "name"}
    )
    assert names(ten_to_nineteen.text) == [f"Summer 1{index}" for index in range(10)]
    # htmx asks for the results alone; unknown filter values fall back to none.
    fragment = await person.get(
        "/admin/sandbox/prod/offers",
        params={"q": "winter", "status": "bogus", "sort": "bogus"},
        headers={"HX-Request": "true"},
    )
    assert fragment.text.startswith('<div id="results">')
    assert names(fragment.text) == ["Winter (a+b)*"]
    # A cursor that this server did not issue for this sandbox is refused, not a 500.
    forged = await person.get("/admin/sandbox/prod/offers", params={"start": "AAAA.bbbb"})
    assert forged.status_code == 400
    assert "cursor" in forged.text


async def test_the_search_takes_like_and_regex_characters_literally_and_folds_case_as_re2(
    client: httpx.AsyncClient, tenant: Tenant, person: httpx.AsyncClient
) -> None:
    """The search narrows the candidates with SQL LIKE on the stored name before RE2 decides
    (store/listing.py): LIKE's own `%`, `_` and `\\` mean themselves; letters match in any
    case as RE2 folds them, beyond ASCII too (the Kelvin sign is a K, the long s an s, E with
    an accent either case), on both backends; a match past the stored name's first 1,024
    characters is found."""
    api = Api(client, tenant)
    long_name = "x" * 1100 + " Needle"
    named = [
        "100% cotton",
        "100 percent",
        "a_b",
        "axb",
        "back\\slash",
        "backslash",
        "\u212aelvin sale",
        "Ma\u017fter",
        "Crème brûlée",
        "CRÈME",
        "creme",
        long_name,
    ]
    for name in named:
        await api.create("personalized-offer", name=name)

    async def found(text: str) -> set[str]:
        page = await person.get("/admin/sandbox/prod/offers", params={"q": text})
        assert page.status_code == 200, page.text
        shown = re.findall(r'<td class="name"><a href="[^"]+">([^<]*)</a><br>', page.text)
        return {unescape(name) for name in shown}

    assert await found("100%") == {"100% cotton"}
    assert await found("%") == {"100% cotton"}
    assert await found("a_b") == {"a_b"}
    assert await found("_") == {"a_b"}
    assert await found("k\\s") == {"back\\slash"}
    assert await found("\\") == {"back\\slash"}
    assert await found("KELVIN") == {"\u212aelvin sale"}
    assert await found("master") == {"Ma\u017fter"}
    assert await found("crème") == {"Crème brûlée", "CRÈME"}
    assert await found("CRÈME B") == {"Crème brûlée"}
    assert await found("needle") == {long_name}
    assert await found("100 % cotton") == set()


async def test_stored_markup_is_shown_as_text(
    client: httpx.AsyncClient, tenant: Tenant, person: httpx.AsyncClient
) -> None:
    evil = '<script>document.title="owned"</script><img src=x onerror=alert(1)>'
    await Api(client, tenant).create("personalized-offer", name=evil)
    page = await person.get("/admin/sandbox/prod/offers")
    assert evil not in page.text
    assert "&lt;script&gt;document.title=&#34;owned&#34;&lt;/script&gt;&lt;img" in page.text
    assert page.text.count("<script") == 1  # the vendored htmx only


# -- tenancy -------------------------------------------------------------------------------------


async def test_a_user_sees_nothing_of_another_organization_through_any_page(
    app: Any, client: httpx.AsyncClient, tenant: Tenant, person: httpx.AsyncClient
) -> None:
    other = await make_tenant(app, client, ("prod", f"theirs-{uuid.uuid4().hex[:8]}"))
    theirs_api = Api(client, other)
    for index in range(30):  # more than a page, so that their cursor exists
        await theirs_api.create("personalized-offer", name=f"Their secret {index}")
    await Api(client, tenant).create("personalized-offer", name="Our offer")
    async with browser(app) as them:
        assert (await sign_in(them, await add_user(app, other.org))).status_code == 303
        their_page = await them.get("/admin/sandbox/prod/offers")
        assert "Their secret" in their_page.text
        assert "Our offer" not in their_page.text
        their_next = re.search(r'<a href="([^"]+)" rel="next">', their_page.text)
        assert their_next
        their_cursor = their_next.group(1).replace("&amp;", "&").split("start=")[1]

    # Both organizations have a sandbox named prod: ours shows our offers only.
    ours = await person.get("/admin/sandbox/prod/offers")
    assert "Our offer" in ours.text
    assert "Their secret" not in ours.text
    assert "1 offer" in text_of(ours.text)
    for query in ({"q": "secret"}, {"status": "draft"}, {"sort": "name"}):
        assert (
            "Their secret"
            not in (await person.get("/admin/sandbox/prod/offers", params=query)).text
        )
    # Their cursor is refused in our sandbox (it is signed for theirs).
    replayed = await person.get("/admin/sandbox/prod/offers", params={"start": their_cursor})
    assert replayed.status_code == 400
    assert "Their secret" not in replayed.text
    # Their other sandbox is not ours: every page of it is "not found", as a name that
    # exists nowhere is; the switcher does not list it, and switching to it leads nowhere.
    async with services_of(app).db.read() as conn:
        their_sandboxes = [s.name for s in await tenants.list_sandboxes(conn, other.org)]
    unique_name = next(name for name in their_sandboxes if name.startswith("theirs-"))
    for slug in SLUGS:
        for name in (unique_name, "no-such-sandbox"):
            response = await person.get(f"/admin/sandbox/{name}/{slug}")
            assert response.status_code == 404, (name, slug)
            assert "Their secret" not in response.text
    switched = await person.get("/admin/switch", params={"sandbox": unique_name})
    assert (await person.get(switched.headers["location"])).status_code == 404
    page = (await person.get("/admin/sandbox/prod/offers")).text
    assert unique_name not in page
    assert other.org not in page


def test_no_template_turns_escaping_off() -> None:
    """Autoescape is on for every template (routes.py); none opts out for a value."""
    from offerbase.api.admin_ui import routes

    autoescape = routes.templates.autoescape
    assert callable(autoescape)
    assert autoescape("list.html")
    assert autoescape(None)
    for path in (routes.HERE / "templates").glob("*.html"):
        source = path.read_text()
        for opt_out in ("|safe", "| safe", "autoescape false", "Markup", "|e(false)"):
            assert opt_out not in source, f"{path.name} uses {opt_out}"


# -- the one action so far: Approve ------------------------------------------------------------


async def _approve(
    http: httpx.AsyncClient, offer_id: str, etag: object, csrf: str | None, sandbox: str = "prod"
) -> httpx.Response:
    form = {"etag": str(etag), "back": f"/admin/sandbox/{sandbox}/offers?sort=name"}
    if csrf is not None:
        form["csrf"] = csrf
    return await http.post(f"/admin/sandbox/{sandbox}/offers/{offer_id}/approve", data=form)


async def test_a_viewer_is_refused_the_approve_action(
    client: httpx.AsyncClient, tenant: Tenant, person: httpx.AsyncClient
) -> None:
    api = Api(client, tenant)
    offer_id = await api.create("personalized-offer", name="Draft one", status="draft")
    page = await person.get("/admin/sandbox/prod/offers")
    assert "Approve" not in page.text  # no button for a viewer
    response = await _approve(person, offer_id, 1, csrf_of(page.text))
    assert response.status_code == 403
    assert "Your role (viewer) may not do this; it needs approver." in response.text
    assert (await api.read("personalized-offer", offer_id))["status"] == "draft"


async def test_an_approver_approves_a_draft_through_the_api_s_checks(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    api = Api(client, tenant)
    offer_id = await api.create("personalized-offer", name="To approve", status="draft")
    email = await add_user(app, tenant.org, role="approver")
    async with browser(app) as http:
        assert (await sign_in(http, email)).status_code == 303
        page = await http.get("/admin/sandbox/prod/offers")
        assert 'aria-label="Approve To approve">Approve</button>' in page.text
        csrf = csrf_of(page.text)
        etag = (await api.read("personalized-offer", offer_id))["etag"]

        assert (await _approve(http, offer_id, etag, None)).status_code == 403  # no CSRF token
        stale = await _approve(http, offer_id, int(etag) + 1, csrf)
        assert stale.status_code == 412
        assert "changed since the page was loaded" in stale.text
        done = await _approve(http, offer_id, etag, csrf)
        assert done.status_code == 303
        assert done.headers["location"] == "/admin/sandbox/prod/offers?sort=name"
        stored = await api.read("personalized-offer", offer_id)
        assert stored["status"] == "approved"
        assert stored["lastModifiedBy"] == email
        again = await _approve(http, offer_id, stored["etag"], csrf)
        assert again.status_code == 422
        assert "Only a draft offer can be approved; this one is approved." in again.text
        # Someone else's offer is not in this sandbox; their sandbox is not the user's.
        other = await make_tenant(app, client, ("prod", f"theirs-{uuid.uuid4().hex[:8]}"))
        theirs = await Api(client, other).create("personalized-offer", status="draft")
        assert (await _approve(http, theirs, 1, csrf)).status_code == 404
        async with services_of(app).db.read() as conn:
            names = [s.name for s in await tenants.list_sandboxes(conn, other.org)]
        their_sandbox = next(name for name in names if name.startswith("theirs-"))
        assert (await _approve(http, theirs, 1, csrf, sandbox=their_sandbox)).status_code == 404
        assert (await Api(client, other).read("personalized-offer", theirs))["status"] == "draft"
        # A "back" address elsewhere is not followed.
        fresh = await api.create("personalized-offer", status="draft")
        response = await http.post(
            f"/admin/sandbox/prod/offers/{fresh}/approve",
            data={"csrf": csrf, "etag": "1", "back": "https://evil.example/"},
        )
        assert response.headers["location"] == "/admin/sandbox/prod/offers"
