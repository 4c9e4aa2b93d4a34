"""The admin UI's Simulation and History pages over HTTP, on SQLite and PostgreSQL: a simulation
explains every candidate from the engine's trace and is a dry run (no counter, no event); the
history shows who changed what, diffs versions and restores one through the API's update path;
roles, CSRF and tenancy hold on both pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from decisioning_catalog import Catalog, criterion, decision_request
from factories import url
from test_admin_ui import add_user, browser, csrf_of, sign_in, text_of

from conftest import Tenant, make_tenant
from offerbase.api.admin_ui import simulation
from offerbase.api.deps import services_of
from offerbase.store import tenants
from offerbase.store.tables import decision_events, entity_history

SIMULATION = "/admin/sandbox/prod/simulation"
RULE_PQL = 'profile.person.name.firstName.equals("Joe", false)'
CAP = {"limit": 1, "scope": "global", "entity": "offer"}  # counts decisions


@pytest.fixture
def app_options() -> dict[str, Any]:
    return {"snapshot_poll_seconds": 0}


async def shop(client: httpx.AsyncClient, tenant: Tenant) -> Catalog:
    """A live decision whose candidates each fall for another reason: gold is capped after one
    real decision, bronze needs a rule, draft is a draft, old is expired; silver is chosen."""
    catalog = Catalog(client, tenant)
    await catalog.placement("hero")
    await catalog.rule("is-joe", RULE_PQL)
    await catalog.offer("gold", ["hero"], priority=9, frequencyCappingConstraints=[CAP])
    await catalog.offer("silver", ["hero"], priority=5)
    await catalog.offer(
        "bronze",
        ["hero"],
        priority=7,
        selectionConstraint={
            "startDate": "2020-01-01T00:00:00Z",
            "endDate": "2040-01-01T00:00:00Z",
            "profileConstraintType": "eligibilityRule",
            "eligibilityRule": "is-joe",
        },
    )
    await catalog.offer("draft1", ["hero"], priority=8, status="draft")
    await catalog.offer(
        "old",
        ["hero"],
        priority=6,
        selectionConstraint={
            "startDate": "2020-01-01T00:00:00Z",
            "endDate": "2021-01-01T00:00:00Z",
            "profileConstraintType": "none",
        },
    )
    await catalog.fallback("fb", ["hero"])
    await catalog.collection("all", ["gold", "silver", "bronze", "draft1", "old"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")
    return catalog


@asynccontextmanager
async def signed_in(app: Any, org: str, role: str = "viewer") -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as http:
        response = await sign_in(http, await add_user(app, org, role))
        assert response.status_code == 303, response.text
        yield http


async def simulate(http: httpx.AsyncClient, **fields: str) -> httpx.Response:
    page = await http.get(SIMULATION)
    assert page.status_code == 200, page.text
    form = {"csrf": csrf_of(page.text), "decision": "dec", "identity": "ann@example.com"}
    form.update(fields)
    return await http.post(SIMULATION, data=form)


def candidate_rows(html: str) -> dict[str, str]:
    """Offer id -> the text of its row in the candidates table."""
    rows = {}
    for row in re.findall(r"<tr class=\"(?:chosen|eligible|dropped)\">(.*?)</tr>", html, re.S):
        found = re.search(r"<small>([^<]+)</small>", row)
        assert found
        rows[found.group(1)] = text_of(row)
    return rows


async def sandbox_pk(app: Any, tenant: Tenant) -> int:
    async with services_of(app).db.read() as conn:
        sandbox = await tenants.get_sandbox(conn, tenant.org, tenant.sandbox)
    assert sandbox is not None
    return sandbox.pk


async def stored_events(app: Any, pk: int) -> int:
    services = services_of(app)
    await services.events.flush()
    async with services.db.read() as conn:
        count = sa.select(sa.func.count()).where(decision_events.c.sandbox_pk == pk)
        return int(await conn.scalar(count) or 0)


async def gold_counter(app: Any, pk: int) -> int:
    key = "cap|gold|fc0|global|-|offer|-|all"
    return (await services_of(app).counters.get_many(pk, [key])).get(key, 0)


# -- simulation ----------------------------------------------------------------------------------


async def test_a_viewer_simulates_and_sees_why_each_offer_was_chosen_or_dropped(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await shop(client, tenant)
    # One real decision: gold is proposed and its cap of one decision is used up.
    real = await client.post(
        "/data/core/ods/decisions",
        json=decision_request([("dec", "hero")]),
        headers={**tenant.headers, "Accept": "application/json"},
    )
    assert real.status_code == 200, real.text
    assert real.json()["xdm:propositions"][0]["xdm:options"][0]["xdm:id"] == "gold"
    pk = await sandbox_pk(app, tenant)
    events, counter = await stored_events(app, pk), await gold_counter(app, pk)
    assert (events, counter) == (1, 1)

    async with signed_in(app, tenant.org) as http:
        response = await simulate(http, **{"placement:hero": "on"})
        assert response.status_code == 200, response.text
        rows = candidate_rows(response.text)
        assert set(rows) == {"gold", "silver", "bronze", "draft1", "old"}
        assert "Chosen" in rows["silver"]
        assert "Dropped" in rows["gold"]
        assert "Cap: " in rows["gold"]
        assert "Rule: " in rows["bronze"]
        assert "is-joe" in rows["bronze"]
        assert "Status: " in rows["draft1"]
        assert "draft" in rows["draft1"]
        assert "Dates: " in rows["old"]
        assert "Proposed: silver" in text_of(response.text)

        # Joe's pasted profile makes bronze eligible: it outranks silver (priority 7 > 5).
        joe = '{"person": {"name": {"firstName": "Joe"}}}'
        as_joe = candidate_rows((await simulate(http, profile=joe)).text)
        assert "Chosen" in as_joe["bronze"]
        assert "Chosen" not in as_joe["silver"]
        assert "Eligible, not chosen" in as_joe["silver"]
        assert "below the item count" in as_joe["silver"]

        # On another day, old is within its dates again.
        past = candidate_rows((await simulate(http, at="2020-06-01T12:00")).text)
        assert "Dates: " not in past["old"]

    # Three simulations later: no counter moved, no decision event was recorded.
    assert await stored_events(app, pk) == events
    assert await gold_counter(app, pk) == counter


async def test_past_the_listed_candidates_the_others_are_counted_not_listed(
    app: Any, client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table lists MAX_CANDIDATE_ROWS candidates, chosen first, then the eligible by rank,
    then the dropped by id; the summary of reasons and the count of the others cover all."""
    await shop(client, tenant)
    monkeypatch.setattr(simulation, "MAX_CANDIDATE_ROWS", 3)
    async with signed_in(app, tenant.org) as http:
        response = await simulate(http, **{"placement:hero": "on"})
    assert response.status_code == 200, response.text
    # gold (priority 9) is chosen, silver eligible; bronze (rule), draft1, old dropped.
    assert list(candidate_rows(response.text)) == ["gold", "silver", "bronze"]
    text = text_of(response.text)
    assert "Dropped (by first reason): 1 by dates, 1 by rule, 1 by status." in text
    assert "2 more candidates are not listed (the counts above include them)." in text


async def test_a_simulation_shows_bad_input_next_to_its_field(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await shop(client, tenant)
    async with signed_in(app, tenant.org) as http:
        cases = {
            "profile": {"profile": "{not json"},
            "context": {"context": '{"an": "object"}'},
            "at": {"at": "yesterday"},
            "item_count": {"item_count": "0"},
            "decision": {"decision": "no-such-decision"},
        }
        for name, fields in cases.items():
            response = await simulate(http, **fields)
            assert response.status_code == 422, name
            assert f'id="{name}-error"' in response.text, name
            assert "Results" not in text_of(response.text), name


async def test_a_simulation_needs_the_csrf_token(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await shop(client, tenant)
    async with signed_in(app, tenant.org) as http:
        refused = await http.post(SIMULATION, data={"decision": "dec", "identity": "a"})
        assert refused.status_code == 403
        wrong = await http.post(SIMULATION, data={"csrf": "x", "decision": "dec", "identity": "a"})
        assert wrong.status_code == 403


async def test_another_organization_cannot_simulate_our_decisions_nor_read_our_history(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await shop(client, tenant)
    other = await make_tenant(app, client, ("prod", f"theirs-{uuid.uuid4().hex[:8]}"))
    async with signed_in(app, other.org, "admin") as them:
        # Their prod is not ours: our live decision is not one they can choose or run.
        page = await them.get(SIMULATION)
        assert page.status_code == 200
        assert 'value="dec"' not in page.text
        response = await simulate(them, **{"placement:hero": "on"})
        assert response.status_code == 422
        assert "silver" not in response.text
        assert "gold" not in response.text
        # Nor read our entities' history, under their sandbox or any other name.
        for path in (
            "/admin/sandbox/prod/history/personalized-offer/gold",
            "/admin/sandbox/prod/history/decision/dec",
            f"/admin/sandbox/{tenant.sandbox}-x/history/personalized-offer/gold",
        ):
            assert (await them.get(path)).status_code == 404, path
        restore = await them.post(
            "/admin/sandbox/prod/history/personalized-offer/gold/restore",
            data={"csrf": csrf_of(page.text), "version": "1", "etag": "1"},
        )
        assert restore.status_code == 404
    async with signed_in(app, tenant.org) as http:
        assert (
            await http.get("/admin/sandbox/prod/history/personalized-offer/gold")
        ).status_code == 200


# -- history -------------------------------------------------------------------------------------


HISTORY = "/admin/sandbox/prod/history/personalized-offer/silver"


async def edit_silver(client: httpx.AsyncClient, tenant: Tenant, name: str) -> None:
    current = await client.get(url("personalized-offer", "silver"), headers=tenant.headers)
    body = {k: v for k, v in current.json().items() if k not in ("id", "etag", "schemas")}
    for key in ("created", "modified", "createdBy", "lastModifiedBy"):
        body.pop(key, None)
    body["name"] = name
    response = await client.put(
        url("personalized-offer", "silver"),
        json=body,
        headers={**tenant.headers, "If-Match": f'"{current.json()["etag"]}"'},
    )
    assert response.status_code == 200, response.text


async def test_history_shows_who_changed_what_and_restores_an_earlier_version(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await shop(client, tenant)
    await edit_silver(client, tenant, "Silver, renamed")
    async with signed_in(app, tenant.org, "editor") as http:
        page = await http.get(HISTORY)
        assert page.status_code == 200, page.text
        text = text_of(page.text)
        assert "created" in text
        assert "updated" in text
        assert f"{tenant.client_id}@{tenant.org}" in text  # the API credential that wrote
        # The newest version's changes against the one before: the name.
        assert "<del>-  &#34;name&#34;: &#34;silver&#34;,</del>" in page.text
        assert "<ins>+  &#34;name&#34;: &#34;Silver, renamed&#34;,</ins>" in page.text

        first = re.search(r'name="version" value="(\d+)"', page.text)
        etag = re.search(r'name="etag" value="(\d+)"', page.text)
        assert first
        assert etag
        form = {"csrf": csrf_of(page.text), "version": first.group(1), "etag": etag.group(1)}
        restored = await http.post(f"{HISTORY}/restore", data=form)
        assert restored.status_code == 303, restored.text
        # A new version (etag 3) with the first version's body, by this user, through the API.
        now = await client.get(url("personalized-offer", "silver"), headers=tenant.headers)
        assert (now.json()["name"], now.json()["etag"]) == ("silver", 3)
        assert now.json()["lastModifiedBy"].endswith("@example.com")
        again = text_of((await http.get(HISTORY)).text)
        assert again.count("updated") >= 2

        # The page of before the restore is stale now: refused, nothing changes.
        stale = await http.post(f"{HISTORY}/restore", data=form)
        assert stale.status_code == 412
        assert "changed since the page was loaded" in stale.text
        after = await client.get(url("personalized-offer", "silver"), headers=tenant.headers)
        assert after.json()["etag"] == 3


async def test_a_restore_goes_through_validation_and_roles(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await shop(client, tenant)
    await edit_silver(client, tenant, "Silver 2")
    async with signed_in(app, tenant.org, "viewer") as viewer:
        page = await viewer.get(HISTORY)
        assert page.status_code == 200
        assert "Restore" not in page.text  # a viewer reads history only
        forged = await viewer.post(
            f"{HISTORY}/restore", data={"csrf": csrf_of(page.text), "version": "1", "etag": "2"}
        )
        assert forged.status_code == 403
    async with signed_in(app, tenant.org, "editor") as editor:
        page = await editor.get(HISTORY)
        version = re.search(r'name="version" value="(\d+)"', page.text)
        assert version
        no_csrf = await editor.post(
            f"{HISTORY}/restore", data={"version": version.group(1), "etag": "2"}
        )
        assert no_csrf.status_code == 403
    # A version whose references are gone is refused by the API's validation, not restored.
    pk = await sandbox_pk(app, tenant)
    bad_body = {"name": "x", "status": "approved", "representations": [], "tags": ["nope"]}
    async with services_of(app).db.write() as conn:
        await conn.execute(
            entity_history.update()
            .where(
                entity_history.c.sandbox_pk == pk,
                entity_history.c.entity_id == "silver",
                entity_history.c.etag == 1,
            )
            .values(body=bad_body)
        )
    async with signed_in(app, tenant.org, "editor") as editor:
        page = await editor.get(HISTORY)
        versions = re.findall(r'name="version" value="(\d+)"', page.text)
        assert len(versions) == 1  # the first version (the newest is the current one)
        current = await client.get(url("personalized-offer", "silver"), headers=tenant.headers)
        form = {"csrf": csrf_of(page.text), "version": versions[0], "etag": "2"}
        refused = await editor.post(f"{HISTORY}/restore", data=form)
        assert refused.status_code == 422, refused.text
        assert "nope" in refused.text
        after = await client.get(url("personalized-offer", "silver"), headers=tenant.headers)
        assert after.json() == current.json()


async def test_a_deleted_entity_keeps_its_history(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    catalog = Catalog(client, tenant)
    await catalog.placement("lonely")
    gone = await client.delete(url("placement", "lonely"), headers=tenant.headers)
    assert gone.status_code == 200, gone.text
    async with signed_in(app, tenant.org, "admin") as http:
        page = await http.get("/admin/sandbox/prod/history/placement/lonely")
        assert page.status_code == 200
        text = text_of(page.text)
        assert "deleted" in text
        assert "created" in text
        assert "Restore" not in page.text
        assert (await http.get("/admin/sandbox/prod/history/placement/never")).status_code == 404
        assert (await http.get("/admin/sandbox/prod/history/no-kind/lonely")).status_code == 404


async def test_stored_markup_is_text_on_the_simulation_and_history_pages(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    evil = '<script>document.title="owned"</script><img src=x onerror=alert(1)>'
    catalog = Catalog(client, tenant)
    await catalog.placement("hero", name=evil)
    await catalog.offer("x", ["hero"], name=evil, status="draft")
    await catalog.collection("c", ["x"])
    await catalog.decision("dec", [criterion("c")], fallback=None, name=evil)
    async with signed_in(app, tenant.org) as http:
        for response in (
            await simulate(http, **{"placement:hero": "on"}),
            await http.get("/admin/sandbox/prod/history/personalized-offer/x"),
            await http.get("/admin/sandbox/prod/history/decision/dec"),
        ):
            assert response.status_code == 200, response.text
            assert evil not in response.text
            assert "&lt;script&gt;" in response.text
            assert response.text.count("<script") == 1  # the vendored htmx only
            assert "<img" not in response.text


async def test_restoring_an_approved_version_over_a_draft_needs_an_approver(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await shop(client, tenant)  # silver is approved
    current = await client.get(url("personalized-offer", "silver"), headers=tenant.headers)
    patch = [{"op": "replace", "path": "/status", "value": "draft"}]
    drafted = await client.patch(
        url("personalized-offer", "silver"),
        json=patch,
        headers={
            **tenant.headers,
            "If-Match": f'"{current.json()["etag"]}"',
            "Content-Type": "application/json-patch+json",
        },
    )
    assert drafted.status_code == 200, drafted.text
    for role, status in (("editor", 403), ("approver", 303)):
        async with signed_in(app, tenant.org, role) as http:
            page = await http.get(HISTORY)
            first = re.findall(r'name="version" value="(\d+)"', page.text)[-1]
            form = {"csrf": csrf_of(page.text), "version": first, "etag": "2"}
            response = await http.post(f"{HISTORY}/restore", data=form)
            assert response.status_code == status, (role, response.text)
    now = await client.get(url("personalized-offer", "silver"), headers=tenant.headers)
    assert (now.json()["status"], now.json()["etag"]) == ("approved", 3)
