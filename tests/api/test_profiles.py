"""Stored profiles over HTTP (`/data/core/ups/profiles`), on SQLite and PostgreSQL."""

from __future__ import annotations

import orjson
import pytest

from conftest import Tenant, make_tenant

ROOT = "/data/core/ups/profiles"
JOE = {
    "person": {"name": {"firstName": "Joe"}},
    "homeAddress": {"city": "Basel"},
    "identityMap": {
        "Email": [{"id": "joe@example.com", "primary": True}],
        "ECID": [{"id": "ecid-joe"}],
    },
    "segmentMembership": {
        "ups": {"seg-1": {"status": "realized", "lastQualificationTime": "2026-01-01T00:00:00Z"}}
    },
}


@pytest.fixture
async def other(app, client) -> Tenant:  # type: ignore[no-untyped-def]
    return await make_tenant(app, client, ("prod",))


async def test_put_get_by_secondary_identity(client, tenant: Tenant) -> None:
    created = await client.put(f"{ROOT}/Email/joe@example.com", json=JOE, headers=tenant.headers)
    assert created.status_code == 201, created.text
    assert created.json() == JOE
    read = await client.get(f"{ROOT}/ecid/ecid-joe", headers=tenant.headers)
    assert read.status_code == 200
    assert read.json() == JOE
    replaced = await client.put(
        f"{ROOT}/ECID/ecid-joe", json={**JOE, "person": {}}, headers=tenant.headers
    )
    assert replaced.status_code == 200
    assert replaced.json()["person"] == {}
    missing = await client.get(f"{ROOT}/Email/JOE@example.com", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_identity_with_slash_and_added_path_identity(client, tenant: Tenant) -> None:
    response = await client.put(f"{ROOT}/crmId/a%2Fb", json={"x": 1}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    assert response.json() == {"x": 1, "identityMap": {"crmId": [{"id": "a/b"}]}}
    read = await client.get(f"{ROOT}/CRMID/a%2Fb", headers=tenant.headers)
    assert read.json()["x"] == 1


async def test_identity_conflict(client, tenant: Tenant) -> None:
    await client.put(f"{ROOT}/Email/joe@example.com", json=JOE, headers=tenant.headers)
    response = await client.put(
        f"{ROOT}/Phone/+41",
        json={"identityMap": {"ECID": [{"id": "ecid-joe"}]}},
        headers=tenant.headers,
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["identity"] == {"namespace": "ecid", "id": "ecid-joe"}
    assert "ecid:ecid-joe" in problem["detail"]
    # Nothing of the rejected profile was written.
    assert (await client.get(f"{ROOT}/Phone/+41", headers=tenant.headers)).status_code == 404


async def test_patch_merge_and_json_patch(client, tenant: Tenant) -> None:
    await client.put(f"{ROOT}/Email/joe@example.com", json=JOE, headers=tenant.headers)
    merged = await client.patch(
        f"{ROOT}/ECID/ecid-joe",
        json={"homeAddress": None, "person": {"name": {"lastName": "Doe"}}},
        headers=tenant.headers,
    )
    assert merged.status_code == 200, merged.text
    assert "homeAddress" not in merged.json()
    assert merged.json()["person"]["name"] == {"firstName": "Joe", "lastName": "Doe"}
    patched = await client.patch(
        f"{ROOT}/Email/joe@example.com",
        json=[{"op": "add", "path": "/identityMap/Phone", "value": [{"id": "+41"}]}],
        headers=tenant.headers,
    )
    assert patched.status_code == 200, patched.text
    assert (await client.get(f"{ROOT}/phone/+41", headers=tenant.headers)).status_code == 200
    bad = await client.patch(
        f"{ROOT}/Email/joe@example.com",
        json=[{"op": "remove", "path": "/missing"}],
        headers=tenant.headers,
    )
    assert bad.status_code == 400
    missing = await client.patch(f"{ROOT}/Email/x@y.z", json={"a": 1}, headers=tenant.headers)
    assert missing.status_code == 404


async def test_delete(client, tenant: Tenant) -> None:
    await client.put(f"{ROOT}/Email/joe@example.com", json=JOE, headers=tenant.headers)
    response = await client.delete(f"{ROOT}/ECID/ecid-joe", headers=tenant.headers)
    assert response.status_code == 200
    assert response.content == b""
    assert (
        await client.get(f"{ROOT}/Email/joe@example.com", headers=tenant.headers)
    ).status_code == 404
    assert (await client.delete(f"{ROOT}/ECID/ecid-joe", headers=tenant.headers)).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        ([1, 2], 400, ""),
        ("text", 400, ""),
        ({"identityMap": {"Email": "a@b.c"}}, 400, "/identityMap/Email"),
        ({"identityMap": {"Email": [{"primary": True}]}}, 400, "/identityMap/Email/0/id"),
        (
            {"segmentMembership": {"ups": {"s1": {"status": "x"}}}},
            400,
            "/segmentMembership/ups/s1/status",
        ),
        ({"blob": "x" * (300 * 1024)}, 413, None),
    ],
)
async def test_bad_input(client, tenant: Tenant, body, status, pointer) -> None:  # type: ignore[no-untyped-def]
    response = await client.put(f"{ROOT}/Email/bad@example.com", json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if pointer is not None:
        assert response.json()["errors"][0]["pointer"] == pointer
    assert (
        await client.get(f"{ROOT}/Email/bad@example.com", headers=tenant.headers)
    ).status_code == 404


async def test_malformed_json_and_auth(client, tenant: Tenant) -> None:
    response = await client.put(
        f"{ROOT}/Email/a@b.c",
        content=b"{nope",
        headers={**tenant.headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert (await client.get(f"{ROOT}/Email/a@b.c")).status_code == 403


async def test_cross_org_isolation(client, tenant: Tenant, other: Tenant) -> None:
    await client.put(f"{ROOT}/Email/joe@example.com", json=JOE, headers=tenant.headers)
    for foreign in (other, tenant.in_sandbox("dev")):
        url = f"{ROOT}/Email/joe@example.com"
        assert (await client.get(url, headers=foreign.headers)).status_code == 404
        patch = await client.patch(url, json={"person": None}, headers=foreign.headers)
        assert patch.status_code == 404
        assert (await client.delete(url, headers=foreign.headers)).status_code == 404
        # Their own profile under the same identity is separate.
        own = await client.put(url, json={"mine": True}, headers=foreign.headers)
        assert own.status_code == 201
    # Another org's credential cannot name this org.
    spoofed = {**other.headers, "x-gw-ims-org-id": tenant.org}
    assert (await client.get(f"{ROOT}/Email/joe@example.com", headers=spoofed)).status_code == 403
    read = await client.get(f"{ROOT}/Email/joe@example.com", headers=tenant.headers)
    assert read.json() == JOE


async def test_import_ndjson_with_bad_lines(client, tenant: Tenant) -> None:
    lines = [
        orjson.dumps({"identityMap": {"Email": [{"id": "u1@x.io", "primary": True}]}, "n": 1}),
        b"{broken",
        orjson.dumps({"identityMap": {"ECID": [{"id": "e2"}]}, "n": 2}),
        b"",
        orjson.dumps({"n": 3}),
        orjson.dumps({"identityMap": {"ECID": [{"id": "e2"}]}, "n": 4}),  # replaces line 3
        orjson.dumps({"identityMap": {"Email": [{"id": "u1@x.io"}], "ECID": [{"id": "e2"}]}}),
    ]
    response = await client.post(
        f"{ROOT}/import",
        content=b"\n".join(lines) + b"\n",
        headers={**tenant.headers, "content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["imported"] == 3
    assert summary["failed"] == 3
    assert [e["line"] for e in summary["errors"]] == [2, 5, 7]
    assert "ecid:e2" in summary["errors"][2]["detail"]  # conflict names the identity
    assert (await client.get(f"{ROOT}/ecid/e2", headers=tenant.headers)).json()["n"] == 4
    other_sandbox = await client.get(f"{ROOT}/ecid/e2", headers=tenant.in_sandbox("dev").headers)
    assert other_sandbox.status_code == 404


async def test_import_media_type_and_long_line(client, tenant: Tenant) -> None:
    wrong = await client.post(
        f"{ROOT}/import", content=b"{}", headers={**tenant.headers, "content-type": "text/csv"}
    )
    assert wrong.status_code == 415
    body = b"x" * (600 * 1024) + b"\n" + orjson.dumps({"identityMap": {"E": [{"id": "1"}]}})
    response = await client.post(
        f"{ROOT}/import",
        content=body,
        headers={**tenant.headers, "content-type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["imported"] == 1
    assert response.json()["errors"][0]["line"] == 1


async def test_json_patch_copy_amplification_is_413_and_changes_nothing(client, tenant) -> None:
    url = f"{ROOT}/Email/joe@example.com"
    await client.put(url, json={**JOE, "a": [[]]}, headers=tenant.headers)
    before = (await client.get(url, headers=tenant.headers)).json()
    doubling = [{"op": "copy", "from": "/a", "path": "/a/-"}] * 60  # 2**60 times the start
    response = await client.patch(url, json=doubling, headers=tenant.headers)
    assert response.status_code == 413, response.text
    assert "more than 262144 bytes" in response.json()["detail"]
    too_many = [{"op": "test", "path": "/a", "value": [[]]}] * 1001
    assert (await client.patch(url, json=too_many, headers=tenant.headers)).status_code == 413
    failing = [{"op": "test", "path": "/a", "value": [1]}]
    assert (await client.patch(url, json=failing, headers=tenant.headers)).status_code == 409
    assert (await client.get(url, headers=tenant.headers)).json() == before
