"""The admin UI's lists and editors through HTTP, as a browser sends them (forms with the CSRF
token): every kind's list (search, filters, sort, pages, "New ..."), every kind's editor round
trip (a form sent back unchanged stores the body unchanged: the form covers every field), errors
next to their fields, stale forms refused, the rule editor's PQL check and profile test, the
role boundaries, and tenancy over every route of the sandbox pages.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from factories import Api, build_graph, html_representation
from test_admin_ui import add_user, browser, csrf_of, make_tenant, sign_in

from admin_evil import EVIL, ORDER, evil_body
from conftest import Tenant
from offerbase.api.admin_ui import catalog_pages
from offerbase.api.admin_ui.kinds import PAGES
from offerbase.api.deps import services_of
from offerbase.store import tenants, users

SLUG_OF = {page.kind: page.slug for page in PAGES.values()}


class _Form(HTMLParser):
    """The fields a browser would send for the page's `form.editor` (successful controls)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self.in_form = False
        self.select: str | None = None
        self.select_first: str | None = None
        self.select_chosen: str | None = None
        self.textarea: str | None = None
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "editor" in a.get("class", ""):
            self.in_form = True
        if not self.in_form:
            return
        if tag == "input" and "name" in a:
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value", "on")))
            else:
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select, self.select_first, self.select_chosen = a["name"], None, None
        elif tag == "option" and self.select is not None:
            if self.select_first is None:
                self.select_first = a.get("value", "")
            if "selected" in a:
                self.select_chosen = a.get("value", "")
        elif tag == "textarea":
            self.textarea, self.text = a["name"], ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "select" and self.select is not None:
            chosen = self.select_chosen if self.select_chosen is not None else self.select_first
            self.fields.append((self.select, chosen or ""))
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            text = self.text[1:] if self.text.startswith("\n") else self.text  # as browsers do
            self.fields.append((self.textarea, text))
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text += data


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def _elements(html: str) -> list[tuple[str, dict[str, str]]]:
    """Every element of the page as a browser's parser sees it: (tag, attributes)."""
    parser = _Elements()
    parser.feed(html)
    return parser.found


def form_of(html: str) -> list[tuple[str, str]]:
    parser = _Form()
    parser.feed(html)
    return parser.fields


def set_field(fields: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in fields if k != name]
    return [*kept, (name, value)]


def error_of(html: str, pointer: str) -> str:
    """The error text shown next to the control named `pointer`."""
    dom = "f" + re.sub(r"[^A-Za-z0-9_-]", lambda m: f"-{ord(m.group()):x}-", pointer)
    found = re.search(rf'<p class="error" id="{re.escape(dom)}-error">([^<]*)</p>', html)
    assert found, f"no error next to {pointer}"
    return unescape(found.group(1))


@asynccontextmanager
async def signed_in(app: Any, org: str, role: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as http:
        assert (await sign_in(http, await add_user(app, org, role))).status_code == 303
        yield http


@pytest.fixture
async def editor(app: Any, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(app, tenant.org, "editor") as http:
        yield http


@pytest.fixture
async def approver(app: Any, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(app, tenant.org, "approver") as http:
        yield http


def _editor_path(kind: str, entity_id: str | None = None) -> str:
    base = f"/admin/sandbox/prod/{SLUG_OF[kind]}"
    return f"{base}/new" if entity_id is None else f"{base}/edit/{quote(entity_id)}"


async def send(http: httpx.AsyncClient, path: str, fields: list[tuple[str, str]]) -> httpx.Response:
    return await http.post(
        path,
        content=httpx.QueryParams(fields).__str__(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    metadata = {"id", "etag", "created", "modified", "createdBy", "lastModifiedBy", "schemas"}
    return {k: v for k, v in body.items() if k not in metadata}


# -- lists ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", list(PAGES))
async def test_every_kind_has_a_list_with_search_sort_filters_and_new(
    client: httpx.AsyncClient, tenant: Tenant, editor: httpx.AsyncClient, slug: str
) -> None:
    page = PAGES[slug]
    api = Api(client, tenant)
    await api.create(page.kind, name="Alpha one")
    await api.create(page.kind, name="Beta two")
    listed = await editor.get(f"/admin/sandbox/prod/{slug}", params={"sort": "name"})
    assert listed.status_code == 200
    html = listed.text
    assert (
        f'<a class="button" href="/admin/sandbox/prod/{slug}/new">New {page.singular}</a>' in html
    )
    names = re.findall(r'<td class="name"><a href="[^"]+">([^<]*)</a>', html)
    assert names == ["Alpha one", "Beta two"]
    descending = await editor.get(f"/admin/sandbox/prod/{slug}", params={"sort": "-name"})
    assert re.findall(r'<td class="name"><a href="[^"]+">([^<]*)</a>', descending.text) == [
        "Beta two",
        "Alpha one",
    ]
    found = await editor.get(f"/admin/sandbox/prod/{slug}", params={"q": "BETA"})
    assert re.findall(r'<td class="name"><a href="[^"]+">([^<]*)</a>', found.text) == ["Beta two"]
    for name, _label, allowed in page.filters:
        value = allowed[-1]
        filtered = await editor.get(f"/admin/sandbox/prod/{slug}", params={name: value})
        assert filtered.status_code == 200
        assert "Alpha one" not in filtered.text or value in filtered.text
    # Every control of the list has a visible label.
    for control in re.findall(r'<(?:input|select) id="([^"]+)"', html):
        assert f'<label for="{control}">' in html, control


async def test_statuses_filter_the_offers_and_decisions(
    client: httpx.AsyncClient, tenant: Tenant, editor: httpx.AsyncClient
) -> None:
    api = Api(client, tenant)
    await api.create("decision", name="Draft decision", status="draft")
    await api.create("decision", name="Done decision", status="archived")
    page = await editor.get("/admin/sandbox/prod/decisions", params={"status": "archived"})
    assert "Done decision" in page.text
    assert "Draft decision" not in page.text


# -- editors -------------------------------------------------------------------------------------


async def test_every_editor_round_trips_every_field(
    client: httpx.AsyncClient, tenant: Tenant, approver: httpx.AsyncClient
) -> None:
    """A form sent back as the editor showed it stores the same body: every field the API
    stored is a control of the form (references, dates, nested rows, JSON parts)."""
    api = Api(client, tenant)
    ids = await build_graph(api)
    full_offer = await api.create(
        "personalized-offer",
        name="Every field",
        description="All of them",
        status="draft",
        representations=[
            {
                **html_representation(ids["placement"], "<b>Hi</b>"),
                "components": [
                    {"type": "html", "format": "text/html", "content": "<b>Hi</b>"},
                    {"type": "json", "format": "application/json", "content": {"a": [1, 2]}},
                    {"type": "imagelink", "deliveryURL": "https://cdn.example/a.png"},
                ],
            }
        ],
        selectionConstraint={
            "startDate": "2026-01-01T00:00:00Z",
            "endDate": "2026-12-31T00:00:00Z",
            "profileConstraintType": "anySegments",
            "segmentIdentities": [{"_id": "seg-1", "namespace": {"code": "ups"}}],
        },
        rank={"priority": 7},
        characteristics={"color": "red", "size": "L"},
        labels=["core"],
        tags=[ids["tag"]],
        cappingConstraint={"globalCap": 100, "profileCap": 3},
        frequencyCappingConstraints=[
            {"limit": 2, "scope": "profile", "entity": "offer", "events": ["impression"]}
        ],
    )
    ids["full-offer"] = full_offer
    for key, entity_id in ids.items():
        kind = "personalized-offer" if key == "full-offer" else key
        before = await api.read(kind, entity_id)
        page = await approver.get(_editor_path(kind, entity_id))
        assert page.status_code == 200, kind
        html = page.text
        # Every control has a visible label (or is a checkbox inside a labelled group).
        for control in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', html):
            assert f'<label for="{control}">' in html, (kind, control)
        saved = await send(approver, _editor_path(kind, entity_id), form_of(html))
        assert saved.status_code == 303, (kind, saved.text[-3000:])
        after = await api.read(kind, entity_id)
        assert after["etag"] == before["etag"] + 1
        assert _comparable(after) == _comparable(before), kind


def _menu(html: str, pointer: str) -> list[tuple[str, str]]:
    """(value, label) of the options of the menu named `pointer`."""
    found = re.search(
        rf'<select id="[^"]+" name="{re.escape(pointer)}"[^>]*>(.*?)</select>', html, re.S
    )
    assert found, f"no menu {pointer}"
    return [
        (value, unescape(label))
        for value, label in re.findall(
            r'<option value="([^"]*)"[^>]*>([^<]*)</option>', found.group(1)
        )
    ]


async def test_a_menu_lists_the_sandbox_s_current_entities_of_its_kind_by_name(
    app: Any,
    client: httpx.AsyncClient,
    tenant: Tenant,
    editor: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reference menu (one read per menu: `Library.names`) lists every current entity of its
    kind in this sandbox, by name then id, the first MAX_CHOICES: not a deleted one, not one of
    another kind, nor of another sandbox of the organization or of another organization."""
    api = Api(client, tenant)
    ours = [
        (await api.create("placement", name=name), name)
        for name in ("Hero", "Banner", "Aside", "Hero")
    ]
    gone = await api.create("placement", name="Deleted")
    assert (await api.delete("placement", gone)).status_code == 200
    await api.create("decision-rule", name="A rule, not a placement")
    async with services_of(app).db.write() as conn:
        await tenants.ensure_sandbox(conn, tenant.org, "second")
    second = Tenant(tenant.org, "second", tenant.client_id, tenant.client_secret, tenant.token)
    await Api(client, second).create("placement", name="Another sandbox's")
    other = await make_tenant(app, client)  # another organization's sandbox "prod"
    await Api(client, other).create("placement", name="Another organization's")
    by_name = sorted(ours, key=lambda item: (item[1], item[0]))

    page = await editor.get(_editor_path("personalized-offer"))
    assert page.status_code == 200
    assert _menu(page.text, "/representations/0/placement") == [("", "(none)"), *by_name]
    monkeypatch.setattr(catalog_pages, "MAX_CHOICES", 2)
    page = await editor.get(_editor_path("personalized-offer"))
    assert _menu(page.text, "/representations/0/placement") == [("", "(none)"), *by_name[:2]]


async def test_a_new_entity_is_made_through_the_api_s_validation_with_errors_by_field(
    client: httpx.AsyncClient, tenant: Tenant, editor: httpx.AsyncClient
) -> None:
    api = Api(client, tenant)
    placement = await api.create("placement", name="Banner")
    page = await editor.get(_editor_path("personalized-offer"))
    assert "<h1>New offer</h1>" in page.text
    fields = form_of(page.text)
    fields = set_field(fields, "/selectionConstraint/startDate", "2026-05-01T00:00:00Z")
    fields = set_field(fields, "/selectionConstraint/endDate", "2026-01-01T00:00:00Z")
    fields = set_field(fields, "/rank/priority", "high")
    refused = await send(editor, _editor_path("personalized-offer"), fields)
    assert refused.status_code == 422
    assert "required" in error_of(refused.text, "/name").lower()
    assert "before startDate" in error_of(refused.text, "/selectionConstraint/endDate")
    assert "integer" in error_of(refused.text, "/rank/priority")
    assert 'value="high"' in refused.text  # what was typed is shown back
    assert await api.ids("personalized-offer") == []

    fields = form_of(refused.text)
    fields = set_field(fields, "/name", "Summer sale")
    fields = set_field(fields, "/selectionConstraint/endDate", "2026-09-01T00:00:00Z")
    fields = set_field(fields, "/rank/priority", "5")
    fields = set_field(
        fields, "/representations/0/channel", "https://ns.adobe.com/xdm/channel-types/web"
    )
    fields = set_field(fields, "/representations/0/placement", placement)
    fields = set_field(fields, "/representations/0/components/0/type", "html")
    fields = set_field(fields, "/representations/0/components/0/content", "<p>Hi</p>")
    fields = set_field(fields, "/characteristics", "color=red\nsize = L")
    fields = set_field(fields, "/representations/1/placement", "no-such-placement")
    fields = set_field(
        fields, "/representations/1/channel", "https://ns.adobe.com/xdm/channel-types/web"
    )
    fields = set_field(fields, "/representations/1/components/0/type", "imagelink")
    fields = set_field(
        fields, "/representations/1/components/0/deliveryURL", "https://cdn.example/a.png"
    )
    unknown = await send(editor, _editor_path("personalized-offer"), fields)
    assert unknown.status_code == 422
    assert "no-such-placement" in error_of(unknown.text, "/representations/1/placement")
    fields = set_field(form_of(unknown.text), "/representations/1/placement", "")
    fields = set_field(fields, "/representations/1/channel", "")
    fields = set_field(fields, "/representations/1/components/0/type", "")
    fields = set_field(fields, "/representations/1/components/0/deliveryURL", "")
    made = await send(editor, _editor_path("personalized-offer"), fields)
    assert made.status_code == 303, made.text[-2000:]
    (offer_id,) = await api.ids("personalized-offer")
    assert made.headers["location"].endswith(f"/edit/{quote(offer_id)}?saved=1")
    stored = await api.read("personalized-offer", offer_id)
    assert stored["name"] == "Summer sale"
    assert stored["rank"] == {"priority": 5}
    assert stored["characteristics"] == {"color": "red", "size": "L"}
    assert stored["representations"][0]["components"][0]["content"] == "<p>Hi</p>"
    assert stored["lastModifiedBy"].endswith("@example.com")
    shown = await editor.get(made.headers["location"])
    assert "Saved." in shown.text
    # The HTML preview is a sandboxed iframe whose srcdoc is escaped.
    assert 'sandbox="" srcdoc="&lt;p&gt;Hi&lt;/p&gt;"' in shown.text


async def test_a_stale_form_is_refused_with_a_clear_message(
    client: httpx.AsyncClient, tenant: Tenant, editor: httpx.AsyncClient
) -> None:
    api = Api(client, tenant)
    placement = await api.create("placement", name="Before")
    page = await editor.get(_editor_path("placement", placement))
    changed = await api.patch(
        "placement", placement, [{"op": "replace", "path": "/name", "value": "Theirs"}]
    )
    assert changed.status_code == 200
    fields = set_field(form_of(page.text), "/name", "Mine")
    stale = await send(editor, _editor_path("placement", placement), fields)
    assert stale.status_code == 412
    assert "Someone changed this entity since you opened it" in stale.text
    assert (await api.read("placement", placement))["name"] == "Theirs"
    no_etag = [(k, v) for k, v in fields if k != "etag"]
    assert (await send(editor, _editor_path("placement", placement), no_etag)).status_code == 400


async def test_the_decision_builder_puts_a_decision_live(
    client: httpx.AsyncClient, tenant: Tenant, approver: httpx.AsyncClient
) -> None:
    api = Api(client, tenant)
    ids = await build_graph(api)
    page = await approver.get(_editor_path("decision"))
    html = page.text
    for pointer in (
        "/criteria/0/placements",
        "/criteria/0/optionSelection/filter",
        "/criteria/0/rank/order/orderEvaluationType",
        "/criteria/0/rank/order/function",
        "/criteria/0/rank/order/rankingStrategy",
        "/criteria/0/rank/priority",
        "/criteria/0/profileConstraint/eligibilityRule",
        "/fallback",
    ):
        assert f'name="{pointer}"' in html, pointer
    fields = form_of(html)
    fields = set_field(fields, "/name", "Homepage")
    fields = set_field(fields, "/status", "live")
    fields = set_field(fields, "/fallback", ids["fallback-offer"])
    fields.append(("/criteria/0/placements", ids["placement"]))
    fields = set_field(fields, "/criteria/0/optionSelection/filter", ids["collection"])
    fields = set_field(fields, "/criteria/0/rank/order/orderEvaluationType", "scoringFunction")
    fields = set_field(fields, "/criteria/0/rank/order/function", ids["ranking-formula"])
    made = await send(approver, _editor_path("decision"), fields)
    assert made.status_code == 303, made.text[-2000:]
    decision_id = unquote(made.headers["location"].split("/edit/")[1].split("?")[0])
    stored = await api.read("decision", decision_id)
    assert stored["status"] == "live"
    assert stored["criteria"] == [
        {
            "placements": [ids["placement"]],
            "optionSelection": {"filter": ids["collection"]},
            "rank": {
                "order": {
                    "orderEvaluationType": "scoringFunction",
                    "function": ids["ranking-formula"],
                }
            },
        }
    ]
    # A reference to nothing is the API's 422, shown next to its control in the builder.
    fields = set_field(fields, "/criteria/0/optionSelection/filter", "no-such-collection")
    again = await send(approver, _editor_path("decision"), fields)
    assert again.status_code == 422
    assert "no-such-collection" in error_of(again.text, "/criteria/0/optionSelection/filter")


# -- the rule editor -----------------------------------------------------------------------------


async def test_the_rule_editor_checks_pql_and_tests_it_against_a_profile(
    client: httpx.AsyncClient, tenant: Tenant, editor: httpx.AsyncClient
) -> None:
    page = await editor.get(_editor_path("decision-rule"))
    assert 'hx-post="/admin/sandbox/prod/decision-rules/check-pql"' in page.text
    csrf = csrf_of(page.text)
    base = "/admin/sandbox/prod/decision-rules"
    bad = await editor.post(
        f"{base}/check-pql",
        data={"/condition/value": 'profile.age > 3 and\n  (profile.x = "a"'},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status_code == 200
    assert re.search(r"Line 2, column \d+:", bad.text), bad.text
    good = await editor.post(
        f"{base}/check-pql",
        data={"/condition/value": "profile.age > 3"},
        headers={"X-CSRF-Token": csrf},
    )
    assert "The PQL is valid." in good.text
    formula = await editor.post(
        "/admin/sandbox/prod/ranking-formulas/check-pql",
        data={"/expression/value": "offer.rank.priority * "},
        headers={"X-CSRF-Token": csrf},
    )
    assert "Line 1, column" in formula.text, formula.text
    assert (
        await editor.post(f"{base}/check-pql", data={"/condition/value": "profile.age > 3"})
    ).status_code == 403  # no CSRF token

    stored = await client.put(
        "/data/core/ups/profiles/ECID/visitor-1",
        json={"person": {"age": 40}},
        headers=tenant.headers,
    )
    assert stored.status_code in (200, 201), stored.text
    for source, verdict in (
        ("person.age > 30", "qualifies"),
        ("person.age > 50", "does not qualify"),
    ):
        tested = await editor.post(
            f"{base}/test",
            data={
                "/condition/value": source,
                "test-namespace": "ECID",
                "test-identity": "visitor-1",
            },
            headers={"X-CSRF-Token": csrf},
        )
        assert f"The profile {verdict}" in tested.text, tested.text
    missing = await editor.post(
        f"{base}/test",
        data={
            "/condition/value": "person.age > 1",
            "test-namespace": "ECID",
            "test-identity": "nobody",
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert "no profile with the identity ECID:nobody" in missing.text


# -- roles ---------------------------------------------------------------------------------------


async def test_roles_viewers_read_editors_change_drafts_approvers_go_live(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    api = Api(client, tenant)
    offer = await api.create("personalized-offer", name="Draft", status="draft")
    async with (
        signed_in(app, tenant.org, "viewer") as viewer,
        signed_in(app, tenant.org, "editor") as editor,
        signed_in(app, tenant.org, "approver") as approver,
    ):
        shown = await viewer.get(_editor_path("personalized-offer", offer))
        assert shown.status_code == 200
        assert "may read this, not change it" in shown.text
        assert '<fieldset class="plain" disabled>' in shown.text
        assert "New offer" not in (await viewer.get("/admin/sandbox/prod/offers")).text
        fields = set_field(form_of(shown.text), "/name", "Viewer was here")
        refused = await send(viewer, _editor_path("personalized-offer", offer), fields)
        assert refused.status_code == 403
        assert "Your role (viewer) may not do this; it needs editor." in refused.text
        new = form_of((await viewer.get(_editor_path("placement"))).text)
        assert (
            await send(viewer, _editor_path("placement"), set_field(new, "/name", "P"))
        ).status_code == 403
        assert await api.ids("placement") == []

        # An editor changes the draft, but may not approve it or make an approved offer.
        page = await editor.get(_editor_path("personalized-offer", offer))
        fields = set_field(form_of(page.text), "/name", "Edited draft")
        assert (
            await send(editor, _editor_path("personalized-offer", offer), fields)
        ).status_code == 303
        page = await editor.get(_editor_path("personalized-offer", offer))
        fields = set_field(form_of(page.text), "/status", "approved")
        refused = await send(editor, _editor_path("personalized-offer", offer), fields)
        assert refused.status_code == 403
        assert "needs approver" in refused.text
        new = set_field(form_of((await editor.get(_editor_path("decision"))).text), "/name", "D")
        live = set_field(new, "/status", "live")
        assert (await send(editor, _editor_path("decision"), live)).status_code == 403
        assert (await send(editor, _editor_path("decision"), new)).status_code == 303
        # CSRF: the same form without its token is refused.
        no_token = [(k, v) for k, v in fields if k != "csrf"]
        assert (
            await send(editor, _editor_path("personalized-offer", offer), no_token)
        ).status_code == 403

        # An approver approves it through the editor.
        page = await approver.get(_editor_path("personalized-offer", offer))
        fields = set_field(form_of(page.text), "/status", "approved")
        assert (
            await send(approver, _editor_path("personalized-offer", offer), fields)
        ).status_code == 303
        stored = await api.read("personalized-offer", offer)
        assert (stored["name"], stored["status"]) == ("Edited draft", "approved")
        # Approved now: the editor may no longer change it.
        page = await editor.get(_editor_path("personalized-offer", offer))
        fields = set_field(form_of(page.text), "/name", "Sneaky")
        assert (
            await send(editor, _editor_path("personalized-offer", offer), fields)
        ).status_code == 403


async def test_only_admins_manage_datastreams(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with (
        signed_in(app, tenant.org, "approver") as approver,
        signed_in(app, tenant.org, "admin") as admin,
    ):
        page = await approver.get("/admin/sandbox/prod/datastreams")
        assert page.status_code == 200
        assert "New datastream" not in page.text
        form = {"csrf": csrf_of(page.text), "name": "Web", "origins": "https://shop.example"}
        refused = await approver.post("/admin/sandbox/prod/datastreams/new", data=form)
        assert refused.status_code == 403
        page = await admin.get("/admin/sandbox/prod/datastreams")
        csrf = csrf_of(page.text)
        bad = await admin.post(
            "/admin/sandbox/prod/datastreams/new",
            data={"csrf": csrf, "name": "Web", "origins": "not an origin"},
        )
        assert bad.status_code == 422
        made = await admin.post(
            "/admin/sandbox/prod/datastreams/new",
            data={"csrf": csrf, "name": "Web shop", "origins": "https://shop.example"},
        )
        assert made.status_code == 303
        listed = await approver.get("/admin/sandbox/prod/datastreams", params={"q": "shop"})
        assert "Web shop" in listed.text
        assert "https://shop.example" in listed.text
        found = re.search(
            r'action="/admin/sandbox/prod/datastreams/([^/"]+)/delete"',
            (await admin.get("/admin/sandbox/prod/datastreams")).text,
        )
        assert found
        path = f"/admin/sandbox/prod/datastreams/{found.group(1)}/delete"
        assert (await approver.post(path, data={"csrf": csrf_of(listed.text)})).status_code == 403
        assert (await admin.post(path, data={"csrf": csrf})).status_code == 303
        assert "Web shop" not in (await admin.get("/admin/sandbox/prod/datastreams")).text


async def test_profiles_are_found_by_identity(
    client: httpx.AsyncClient, tenant: Tenant, editor: httpx.AsyncClient
) -> None:
    for index in range(30):
        response = await client.put(
            f"/data/core/ups/profiles/ECID/p-{index}",
            json={"person": {"name": f"Person {index}"}},
            headers=tenant.headers,
        )
        assert response.status_code in (200, 201)
    first = await editor.get("/admin/sandbox/prod/profiles")
    assert first.text.count("<details") == 25
    next_href = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert next_href
    second = await editor.get(unescape(next_href.group(1)))
    assert second.text.count("<details") == 5
    found = await editor.get("/admin/sandbox/prod/profiles", params={"identity": "p-7"})
    assert found.text.count("<details") == 1
    assert "Person 7" in found.text


# -- tenancy over every route --------------------------------------------------------------------


def _sandbox_routes() -> list[tuple[str, str]]:
    """Every route of the admin UI's routers under a sandbox."""
    from offerbase.api.admin_ui import catalog_pages, credential_pages, records, routes, user_pages

    found = []
    routers = (catalog_pages, records, user_pages, credential_pages, routes)
    everything = [route for module in routers for route in module.router.routes]
    for route in everything:
        path = getattr(route, "path", "")
        if path.startswith("/admin/sandbox/{sandbox_name}/"):
            for method in sorted(getattr(route, "methods", set()) - {"HEAD"}):
                found.append((method, path))
    return found


async def test_no_page_or_form_reaches_another_organization(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """For every route of the sandbox pages: their sandbox is "not found" to us, and in our
    own sandbox of the same name their entity ids are unknown; nothing of theirs changes."""
    other = await make_tenant(app, client, ("prod", "theirs-only"))
    theirs = Api(client, other)
    their_ids = await build_graph(theirs)
    before = {kind: await theirs.read(kind, entity_id) for kind, entity_id in their_ids.items()}
    their_names = [f">{body['name']}<" for body in before.values()]
    stream = await client.post(
        "/data/core/edge/datastreams", json={"name": "Theirs"}, headers=other.headers
    )
    assert stream.status_code == 201, stream.text
    their_stream = stream.json()["id"]
    their_user = await add_user(app, other.org, "viewer")
    routes = _sandbox_routes()
    assert (
        len(routes) > 46
    )  # lists, editors, checks, profiles, datastreams, approve, users, credentials
    async with signed_in(app, tenant.org, "admin") as admin:
        csrf = csrf_of((await admin.get("/admin/sandbox/prod/offers")).text)
        for method, path in routes:
            for sandbox in ("theirs-only", "prod"):
                for entity_id in their_ids.values():
                    target = (
                        path.replace("{sandbox_name}", sandbox)
                        .replace("{entity_id:path}", entity_id)
                        .replace("{entity_id}", entity_id)
                        .replace("{offer_id}", entity_id)
                        .replace("{datastream_id}", their_stream)
                        .replace("{client_id}", other.client_id)
                    )
                    data = {"csrf": csrf, "etag": "1", "/name": "Owned", "name": "Owned"}
                    data["email"] = their_user
                    response = await admin.request(
                        method, target, data=data if method == "POST" else None
                    )
                    if sandbox == "theirs-only":
                        assert response.status_code == 404, (method, target)
                    else:
                        assert response.status_code in (200, 303, 404, 422), (method, target)
                        if response.status_code == 303:  # a create in OUR sandbox, not theirs
                            assert "/sandbox/prod/" in response.headers["location"]
                    for name in their_names:
                        assert name not in response.text, (method, target, name)
                    if "{" not in path.split("{sandbox_name}")[1]:
                        break  # a route without an id: once is enough
    for kind, entity_id in their_ids.items():
        assert await theirs.read(kind, entity_id) == before[kind], kind
    async with services_of(app).db.read() as conn:  # their user and credential are as they were
        assert (await users.get_user(conn, other.org, their_user)).role == "viewer"  # type: ignore[union-attr]
        assert (await tenants.get_credential(conn, other.client_id)).revoked is None  # type: ignore[union-attr]
    listed = await client.get("/data/core/edge/datastreams", headers=other.headers)
    assert [d["id"] for d in listed.json()["results"]] == [their_stream]
    async with services_of(app).db.read() as conn:
        assert [s.name for s in await tenants.list_sandboxes(conn, other.org)] == [
            "prod",
            "theirs-only",
        ]


# -- escaping ------------------------------------------------------------------------------------


async def test_markup_in_every_text_field_of_every_kind_is_shown_as_text(
    client: httpx.AsyncClient, tenant: Tenant, approver: httpx.AsyncClient
) -> None:
    """Lists and editors: no stored value becomes markup; the only HTML a representation may
    render is in the srcdoc of an iframe with sandbox="" (escaped as an attribute)."""
    api = Api(client, tenant)
    ids: dict[str, str] = {}
    for kind in ORDER:
        ids[kind] = await api.create(kind, evil_body(kind, ids))
    for kind, entity_id in ids.items():
        for path in (f"/admin/sandbox/prod/{SLUG_OF[kind]}", _editor_path(kind, entity_id)):
            page = await approver.get(path)
            assert page.status_code == 200, path
            html = page.text
            elements = _elements(html)
            for tag, attrs in elements:
                assert not [name for name in attrs if name.startswith("on")], (path, tag, attrs)
                if tag == "script":
                    assert attrs == {"src": "/admin/static/htmx.min.js", "defer": ""}, path
                if tag == "iframe":
                    assert attrs.get("sandbox") == "", (path, attrs)
                if tag == "img":
                    assert attrs.get("src", "").startswith("https://"), (path, attrs)
            assert "&lt;script&gt;window.owned" in html, path
            frames = [attrs for tag, attrs in elements if tag == "iframe"]
            if kind.endswith("offer") and path.startswith(_editor_path(kind, entity_id)):
                assert frames, "the HTML representation has a preview"
                assert EVIL in frames[0]["srcdoc"]  # the HTML itself, only in the frame


async def test_criteria_are_reordered_and_removed_by_their_rows(
    client: httpx.AsyncClient, tenant: Tenant, editor: httpx.AsyncClient
) -> None:
    """The decision builder's evaluation order is the rows' Position; Remove drops a row."""
    api = Api(client, tenant)
    ids = await build_graph(api)
    first = {"placements": [ids["placement"]], "optionSelection": {"filter": ids["collection"]}}
    second = {**first, "rank": {"priority": 2}}
    decision = await api.create("decision", name="Ordered", criteria=[first, second])
    path = _editor_path("decision", decision)
    page = await editor.get(path)
    assert '<label for="f-2f-criteria-2f-0-23-position">Position</label>' in page.text
    assert "Remove criterion 2" in page.text
    fields = set_field(form_of(page.text), "/criteria/1#position", "0")
    assert (await send(editor, path, fields)).status_code == 303
    assert (await api.read("decision", decision))["criteria"] == [second, first]
    page = await editor.get(path)
    fields = [*form_of(page.text), ("/criteria/0#remove", "yes")]
    assert (await send(editor, path, fields)).status_code == 303
    assert (await api.read("decision", decision))["criteria"] == [first]
