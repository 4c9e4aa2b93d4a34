"""The legacy Decisioning API as Adobe's "AJO: Decisioning Service" Postman collection calls it:
container discovery on the xcore root, then `/data/core/ode/{containerId}/...` with the
container id it chained, no `x-sandbox-name`, `Accept: application/json`, and the 0.9 request
format (`xdm:offerActivities`, a top-level `xdm:identityMap`)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from decisioning_catalog import Catalog, criterion, decision_request, option_ids

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
XCORE_HOME = "application/vnd.adobe.platform.xcore.home.hal+json"
CONTAINER = "https://ns.adobe.com/experience/xcore/container"


@pytest.fixture
def app_options():
    return {"clock": lambda: NOW, "rng": random.Random(7), "snapshot_poll_seconds": 0}


def collection_headers(tenant) -> dict[str, str]:
    """The collection's headers: no sandbox name, a request id."""
    headers = {k: v for k, v in tenant.headers.items() if k != "x-sandbox-name"}
    return {**headers, "x-request-id": "unique-requestid-1"}


@pytest.fixture
async def legacy(client, tenant):
    """The basic catalog in `prod`, and the container id as the collection's first request
    chains it (`_embedded[CONTAINER][0].instanceId`)."""
    catalog = Catalog(client, tenant)
    await catalog.placement("web")
    await catalog.placement("email")
    await catalog.offer("low", ["web"], priority=1)
    await catalog.offer("high", ["web"], priority=9)
    await catalog.offer("mail", ["email"], priority=5)
    await catalog.offer("draft", ["web"], status="draft")
    await catalog.fallback("fb", ["web", "email"])
    await catalog.collection("all", ["low", "high", "draft", "mail"])
    await catalog.decision("dec", [criterion("all", placements=["web"])], fallback="fb")
    await catalog.decision("both", [criterion("all", placements=["web", "email"])], fallback="fb")
    response = await client.get(
        "/data/core/xcore/?product=acp&property=_instance.parentName==prod",
        headers={**collection_headers(tenant), "Accept": XCORE_HOME},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XCORE_HOME
    (container,) = response.json()["_embedded"][CONTAINER]
    assert container["_instance"]["parentName"] == "prod"
    return client, tenant, container["instanceId"]


async def test_container_discovery_filters_by_sandbox_name_and_type(client, tenant) -> None:
    headers = collection_headers(tenant)
    await client.get("/data/core/ods/containers", headers=headers)  # creates nothing
    every = await client.get(
        "/data/core/xcore/?product=acp&property=_instance.containerType==decisioning",
        headers=headers,
    )
    names = {c["_instance"]["parentName"] for c in every.json()["_embedded"][CONTAINER]}
    assert names == {"prod", "dev"}
    none = await client.get(
        "/data/core/xcore/?product=acp&property=_instance.parentName==nope", headers=headers
    )
    assert none.json()["_embedded"][CONTAINER] == []
    bad = await client.get("/data/core/xcore/?property=parentName", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["pointer"] == "property"
    unknown = await client.get("/data/core/xcore/?sandbox=prod", headers=headers)
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["pointer"] == "sandbox"


async def test_the_ods_container_list_needs_no_sandbox_header(client, tenant) -> None:
    response = await client.get("/data/core/ods/containers", headers=collection_headers(tenant))
    assert response.status_code == 200, response.text
    assert {c["sandboxName"] for c in response.json()["results"]} == {"prod", "dev"}


async def test_a_09_request_is_decided_without_a_sandbox_header(legacy) -> None:
    client, tenant, container = legacy
    body = {
        "xdm:dryRun": False,
        "xdm:validateContextData": False,
        "xdm:offerActivities": [{"xdm:offerActivity": "dec"}],
        "xdm:identityMap": {"Email": [{"xdm:id": "someone@example.com"}]},
        "xdm:profileModel": "_xdm.context.profile",
        "xdm:contextData": [],
    }
    response = await client.post(
        f"/data/core/ode/{container}/decisions",
        json=body,
        headers={**collection_headers(tenant), "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    (proposition,) = response.json()["xdm:propositions"]
    assert proposition["xdm:placement"]["xdm:id"] == "web"
    assert option_ids(proposition) == ["high"]


async def test_a_09_activity_is_asked_for_in_each_of_its_placements(legacy) -> None:
    client, tenant, container = legacy
    body = {
        "xdm:offerActivities": [
            {"xdm:offerActivity": "both"},
            {"xdm:offerActivity": "dec", "xdm:offerPlacement": "web"},
        ],
        "xdm:identityMap": {"Email": [{"xdm:id": "someone@example.com"}]},
        "xdm:allowDuplicatePropositions": {"xdm:acrossActivities": True},
    }
    response = await client.post(
        f"/data/core/ode/{container}/decisions", json=body, headers=collection_headers(tenant)
    )
    assert response.status_code == 200, response.text
    got = [
        (p["xdm:activity"]["xdm:id"], p["xdm:placement"]["xdm:id"], option_ids(p))
        for p in response.json()["xdm:propositions"]
    ]
    assert got == [("both", "web", ["high"]), ("both", "email", ["mail"]), ("dec", "web", ["high"])]


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        ({"xdm:offerActivities": []}, 400, "/xdm:offerActivities"),
        (
            {"xdm:offerActivities": [{"xdm:offerActivity": 7}]},
            400,
            "/xdm:offerActivities/0/xdm:offerActivity",
        ),
        (
            {"xdm:offerActivities": [{"xdm:offerActivity": "nope"}]},
            404,
            "/xdm:offerActivities/0/xdm:offerActivity",
        ),
        (
            {"xdm:offerActivities": [{"xdm:offerActivity": "dec", "xdm:offerPlacement": ""}]},
            400,
            "/xdm:offerActivities/0/xdm:offerPlacement",
        ),
        (
            {"xdm:offerActivities": [{"xdm:offerActivity": "both"}] * 16},
            422,
            "/xdm:offerActivities",
        ),
    ],
)
async def test_bad_09_requests_name_the_09_member(legacy, body, status, pointer) -> None:
    client, tenant, container = legacy
    response = await client.post(
        f"/data/core/ode/{container}/decisions", json=body, headers=collection_headers(tenant)
    )
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["pointer"] == pointer


async def test_activity_offers_lists_candidates_and_fallback(legacy) -> None:
    client, tenant, container = legacy
    response = await client.get(
        f"/data/core/ode/{container}/offers?activityId=dec&activityId=both",
        headers={**collection_headers(tenant), "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    dec, both = response.json()["xdm:activityOffers"]
    assert dec["xdm:offerActivity"]["@id"] == "dec"
    assert (
        dec["xdm:offerActivity"]["_links"]["self"]["href"] == "/data/core/dps/offer-decisions/dec"
    )
    # Approved offers with a representation for the decision's placement, priority order.
    assert [o["@id"] for o in dec["xdm:offers"]] == ["high", "low"]
    assert [o["@id"] for o in both["xdm:offers"]] == ["high", "low", "mail"]
    assert dec["xdm:fallbackOffer"]["@id"] == "fb"
    assert dec["xdm:fallbackOffer"]["repo:etag"] == "1"
    # Every link reads back the entity it names.
    href = dec["xdm:offers"][0]["_links"]["self"]["href"]
    read = await client.get(href, headers=tenant.headers)
    assert read.status_code == 200
    assert read.json()["id"] == "high"


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 400), ("?activityId=nope", 404), ("?" + "&".join(["activityId=dec"] * 31), 400)],
)
async def test_activity_offers_refuses_bad_queries(legacy, query, status) -> None:
    client, tenant, container = legacy
    response = await client.get(
        f"/data/core/ode/{container}/offers{query}", headers=collection_headers(tenant)
    )
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["pointer"] == "activityId"


async def test_diagnostics_dates_follow_catalog_writes(legacy) -> None:
    client, tenant, container = legacy
    url = f"/data/core/ode/{container}/diagnostics"
    first = (await client.get(url, headers=collection_headers(tenant))).json()["xdm:operations"]
    assert first["xdm:offerCatalogUpdate"]["xdm:errors"] == []
    assert first["xdm:activitiesUpdate"]["xdm:errors"] == []
    offers_date = first["xdm:offerCatalogUpdate"]["xdm:date"]
    activities_date = first["xdm:activitiesUpdate"]["xdm:date"]
    assert offers_date is not None
    assert activities_date is not None
    await asyncio.sleep(0.002)  # timestamps have millisecond precision
    deleted = await client.delete("/data/core/dps/offer-decisions/both", headers=tenant.headers)
    assert deleted.status_code in (200, 202, 204), deleted.text
    after = (await client.get(url, headers=collection_headers(tenant))).json()["xdm:operations"]
    assert after["xdm:offerCatalogUpdate"]["xdm:date"] == offers_date
    # A delete is a change of the activities too.
    assert after["xdm:activitiesUpdate"]["xdm:date"] > activities_date


async def test_a_container_of_another_organization_is_not_found(legacy, other_tenant) -> None:
    client, _tenant, container = legacy
    stranger = await other_tenant()
    for method, path in [
        ("GET", f"/data/core/ode/{container}/offers?activityId=dec"),
        ("GET", f"/data/core/ode/{container}/diagnostics"),
        ("POST", f"/data/core/ode/{container}/decisions"),
    ]:
        response = await client.request(
            method, path, json=decision_request([("dec", "web")]), headers=stranger.headers
        )
        assert response.status_code == 404, (path, response.text)
    found = await client.get(
        f"/data/core/xcore/?property=instanceId=={container}", headers=stranger.headers
    )
    assert found.json()["_embedded"][CONTAINER] == []


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/vnd.adobe.xdm+json"),
        ("application/json", "application/json"),
        ("application/vnd.adobe.xed+json", "application/vnd.adobe.xed+json"),
        ("application/json, application/problem+json", "application/json"),
    ],
)
async def test_the_decision_content_type_follows_accept(legacy, accept, content_type) -> None:
    client, tenant, _container = legacy
    headers = dict(tenant.headers)
    if accept is not None:
        headers["Accept"] = accept
    response = await client.post(
        "/data/core/ods/decisions", json=decision_request([("dec", "web")]), headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == content_type
