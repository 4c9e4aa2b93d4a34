"""Datastreams over HTTP (`/data/core/edge/datastreams`) and each worker's cache of them
(api/datastream_cache.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from conftest import Tenant
from offerbase.api.datastream_cache import DatastreamCache
from offerbase.store import datastreams as store
from offerbase.store import tenants

ROOT = "/data/core/edge/datastreams"


async def test_create_read_list_delete(client, tenant: Tenant) -> None:
    body = {
        "name": "Web shop",
        "origins": [
            "HTTPS://WWW.Shop.Example:443/",
            "http://localhost:8080",
            "https://www.shop.example",
        ],
        "itemCounts": {"dps:offer-placement:1": 3.0},  # an integer to JSON
    }
    created = await client.post(ROOT, json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert created.headers["location"] == f"{ROOT}/{shown['id']}"
    assert uuid.UUID(shown["id"])  # a generated id looks like Adobe's
    assert shown == {
        "id": shown["id"],
        "org": tenant.org,
        "sandbox": tenant.sandbox,
        "name": "Web shop",
        # lower-case, default port and trailing slash dropped, duplicates once
        "origins": ["https://www.shop.example", "http://localhost:8080"],
        "itemCounts": {"dps:offer-placement:1": 3},
        "created": shown["created"],
    }
    read = await client.get(f"{ROOT}/{shown['id']}", headers=tenant.headers)
    assert (read.status_code, read.json()) == (200, shown)
    empty = await client.post(ROOT, json={}, headers=tenant.headers)
    assert empty.status_code == 201
    assert (empty.json()["origins"], empty.json()["itemCounts"]) == ([], {})
    listed = await client.get(ROOT, headers=tenant.headers)
    assert listed.json() == {"results": [shown, empty.json()], "count": 2}
    # Another sandbox of the organization has its own.
    dev = await client.get(ROOT, headers=tenant.in_sandbox("dev").headers)
    assert dev.json() == {"results": [], "count": 0}

    deleted = await client.delete(f"{ROOT}/{shown['id']}", headers=tenant.headers)
    assert (deleted.status_code, deleted.content) == (204, b"")
    again = await client.delete(f"{ROOT}/{shown['id']}", headers=tenant.headers)
    assert again.status_code == 404
    gone = await client.get(f"{ROOT}/{shown['id']}", headers=tenant.headers)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"


async def test_another_tenants_datastream_is_not_found(
    client, tenant: Tenant, other_tenant
) -> None:
    created = await client.post(ROOT, json={"name": "mine"}, headers=tenant.headers)
    datastream_id = created.json()["id"]
    other = await other_tenant()
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"{ROOT}/{datastream_id}", headers=other.headers)
        assert response.status_code == 404, method
    assert (await client.get(ROOT, headers=other.headers)).json()["count"] == 0
    in_dev = await client.get(f"{ROOT}/{datastream_id}", headers=tenant.in_sandbox("dev").headers)
    assert in_dev.status_code == 404
    assert (await client.get(f"{ROOT}/{datastream_id}", headers=tenant.headers)).status_code == 200


@pytest.mark.parametrize(
    ("body", "pointer", "says"),
    [
        ({"origins": ["https://shop.example/path"]}, "/origins/0", "'https://shop.example/path'"),
        ({"origins": ["ok.example"]}, "/origins/0", "is not an origin"),
        ({"origins": ["https://a.example", "ftp://b.example"]}, "/origins/1", "ftp://b.example"),
        ({"origins": ["*"]}, "/origins/0", "wildcard"),
        ({"origins": ["https://a.example?x=1"]}, "/origins/0", "query"),
        ({"origins": [7]}, "/origins/0", "string"),
        ({"origins": "https://a.example"}, "/origins", "array"),
        ({"origins": ["https://a.example"] * 101}, "/origins", "At most 100"),
        ({"itemCounts": {"p": 0}}, "/itemCounts/p", "1 to 30"),
        ({"itemCounts": {"p": 31}}, "/itemCounts/p", "1 to 30"),
        ({"itemCounts": {"p": True}}, "/itemCounts/p", "integer"),
        ({"itemCounts": {"p": "2"}}, "/itemCounts/p", "integer"),
        ({"itemCounts": {"p": 2.5}}, "/itemCounts/p", "integer"),
        ({"itemCounts": {f"p{i}": 1 for i in range(1001)}}, "/itemCounts", "At most 1000"),
        ({"itemCounts": []}, "/itemCounts", "object"),
        ({"name": 3}, "/name", "string"),
        ({"name": "x" * 256}, "/name", "255"),
        ({"id": "mine"}, "/id", "Unknown field"),
        ([], "", "object"),
    ],
)
async def test_bad_bodies_name_the_field(client, tenant: Tenant, body, pointer, says) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(ROOT, json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["pointer"] for error in problem["errors"]] == [pointer]
    assert says in problem["errors"][0]["detail"]
    assert (await client.get(ROOT, headers=tenant.headers)).json()["count"] == 0


async def test_not_json_and_no_credential(client, tenant: Tenant) -> None:
    text = await client.post(
        ROOT, content=b"name", headers={**tenant.headers, "content-type": "text/plain"}
    )
    assert text.status_code == 400
    anonymous = await client.get(ROOT)
    assert anonymous.status_code == 403
    assert anonymous.json()["error_code"] == "403010"


async def test_the_served_document_describes_the_routes(client) -> None:
    document = (await client.get("/openapi.json")).json()
    assert set(document["paths"][ROOT]) == {"get", "post"}
    assert set(document["paths"][ROOT + "/{datastreamId}"]) == {"get", "delete"}
    post = document["paths"][ROOT]["post"]
    assert "security" in post
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["origins"]["items"]["pattern"] == store.ORIGIN_PATTERN


def test_origins_are_normalised_or_refused_by_name() -> None:
    normalise = store.normalise_origin
    assert normalise("HTTPS://Shop.Example") == "https://shop.example"
    assert normalise("http://shop.example:80/") == "http://shop.example"
    assert normalise("https://shop.example:80") == "https://shop.example:80"
    assert normalise("http://[::1]:8080") == "http://[::1]:8080"
    for bad in [
        "https://shop.example:0",
        "https://shop.example:65536",
        "https://-a.example",
        "https://user@shop.example",
        "https://shop.example#x",
        "https://",
        "null",
        "https://a.example.",
        "https://" + "a" * 300,
    ]:
        with pytest.raises(ValueError, match="is not an origin"):
            normalise(bad)


def test_allows_origin_compares_normalised_origins() -> None:
    sandbox = tenants.Sandbox(1, "org", "prod", "s", "c")
    datastream = store.Datastream("d", sandbox, "", ("https://shop.example",), {}, "now")
    assert datastream.allows_origin("https://shop.example")
    assert datastream.allows_origin("https://SHOP.example:443")
    assert not datastream.allows_origin("https://shop.example:8443")
    assert not datastream.allows_origin("http://shop.example")
    assert not datastream.allows_origin("null")
    assert not datastream.allows_origin("https://evil.example")


async def test_the_cache_answers_from_memory_within_its_ttl(services, tenant: Tenant) -> None:
    db = services.db
    async with db.read() as conn:
        sandbox = await tenants.get_sandbox(conn, tenant.org, tenant.sandbox)
    assert sandbox is not None
    datastream_id = f"cache-{uuid.uuid4().hex}"
    patient = DatastreamCache(db, ttl_seconds=3600)
    eager = DatastreamCache(db, ttl_seconds=0)
    assert await patient.get(datastream_id) is None  # not found, and remembered
    async with db.write() as conn:
        await store.create_datastream(conn, sandbox, datastream_id=datastream_id)
    assert await patient.get(datastream_id) is None  # trusted for the ttl
    assert patient.lookups == 1
    found = await eager.get(datastream_id)
    assert found is not None
    assert found.sandbox == sandbox
    patient.forget(datastream_id)
    assert await patient.get(datastream_id) == found
    # Ids no datastream can have cost no query.
    for malformed in ["", "a" * 65, "a/b", "..", "a b", "é"]:
        assert await patient.get(malformed) is None
    assert patient.lookups == 2


async def test_the_cache_is_bounded(services) -> None:
    cache = DatastreamCache(services.db, ttl_seconds=3600, max_entries=3)
    for index in range(5):
        assert await cache.get(f"unknown-{index}") is None
    assert cache.lookups == 5
    assert await cache.get("unknown-4") is None  # the newest are kept...
    assert cache.lookups == 5
    assert await cache.get("unknown-0") is None  # ...the oldest were dropped
    assert cache.lookups == 6


async def test_concurrent_misses_share_one_read(services) -> None:
    """When an entry expires under load, the requests in flight for it wait for one query
    instead of each running its own (bench/load_edge.py: a stall every ttl otherwise)."""
    cache = DatastreamCache(services.db, ttl_seconds=0)
    found = await asyncio.gather(*(cache.get("unknown-shared") for _ in range(20)))
    assert found == [None] * 20
    assert cache.lookups == 1
    assert await cache.get("unknown-shared") is None  # expired (ttl 0): read again
    assert cache.lookups == 2
