"""Tenancy: another organization and another sandbox of the same organization see nothing."""

from __future__ import annotations

import pytest
from factories import ALL_KINDS, Api, body, build_graph, html_representation, pointers, problem

from conftest import make_tenant


@pytest.fixture
async def other_org(app, client, tenant):
    return await make_tenant(app, client, ("prod", "dev"))


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("who", ["other-org", "other-sandbox"])
async def test_entity_is_invisible_elsewhere(client, tenant, other_org, kind, who):
    owner = Api(client, tenant)
    entity_id = await owner.create(kind, entity_id=f"shared-{kind}")
    original = await owner.read(kind, entity_id)
    outsider = Api(client, other_org if who == "other-org" else tenant.in_sandbox("dev"))

    problem(await outsider.get(kind, entity_id), 404)
    assert entity_id not in await outsider.ids(kind)
    assert (await outsider.list(kind)).json()["total"] == 0
    ops = [{"op": "replace", "path": "/name", "value": "hijacked"}]
    problem(await outsider.patch(kind, entity_id, ops), 404)
    problem(await outsider.put(kind, entity_id, body(kind, name="hijacked")), 404)
    problem(await outsider.delete(kind, entity_id), 404)
    assert await owner.read(kind, entity_id) == original

    # The same id is free elsewhere, and creating it there leaves the owner's untouched.
    created = await outsider.post(kind, body(kind, name="Theirs"), entity_id)
    assert created.status_code == 201, created.text
    assert (await outsider.read(kind, entity_id))["name"] == "Theirs"
    assert await owner.read(kind, entity_id) == original
    assert (await outsider.delete(kind, entity_id)).status_code == 200
    assert await owner.read(kind, entity_id) == original


async def test_whole_graph_is_isolated_per_sandbox(client, tenant):
    prod = Api(client, tenant)
    dev = Api(client, tenant.in_sandbox("dev"))
    ids = await build_graph(prod)
    for kind, entity_id in ids.items():
        problem(await dev.get(kind, entity_id), 404)
        assert await dev.ids(kind) == []
        assert await prod.ids(kind) == [entity_id]


async def test_references_cannot_cross_sandboxes(client, tenant):
    prod = Api(client, tenant)
    dev = Api(client, tenant.in_sandbox("dev"))
    placement = await prod.create("placement")
    response = await dev.post(
        "personalized-offer",
        body("personalized-offer", representations=[html_representation(placement)]),
    )
    assert pointers(problem(response, 422)) == ["/representations/0/placement"]
    assert await dev.ids("personalized-offer") == []

    tag = await prod.create("tag")
    response = await dev.post("collection", body("collection", ids=[tag]))
    assert pointers(problem(response, 422)) == ["/ids/0"]
    assert await dev.ids("collection") == []


async def test_references_cannot_cross_organizations(client, tenant, other_org):
    theirs = await Api(client, other_org).create("fallback-offer")
    mine = Api(client, tenant)
    response = await mine.post("decision", body("decision", fallback=theirs))
    assert pointers(problem(response, 422)) == ["/fallback"]
    assert await mine.ids("decision") == []


async def test_a_referrer_in_another_sandbox_does_not_block_delete(client, tenant):
    prod = Api(client, tenant)
    dev = Api(client, tenant.in_sandbox("dev"))
    await prod.create("placement", entity_id="offerPlacement1234")
    await dev.create("placement", entity_id="offerPlacement1234")
    await dev.create(
        "personalized-offer", representations=[html_representation("offerPlacement1234")]
    )
    assert (await prod.delete("placement", "offerPlacement1234")).status_code == 200
    problem(await dev.delete("placement", "offerPlacement1234"), 409)
