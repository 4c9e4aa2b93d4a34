"""Credentials over their life (issue 9.4): revocation and rotation seen by every worker, the
sandbox a credential is limited to, and the admin endpoints. A second app on the same database
plays another worker (or another host)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from conftest import Tenant, _services
from offerbase.store import tenants

TOKEN = "/ims/token/v3"
TAGS = "/data/core/dps/tags"
ADMIN = "/admin/credentials"


def http(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://o.test")


async def login(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await client.post(TOKEN, data=data)


async def tenant_of(
    app: Any, client: httpx.AsyncClient, credential: tenants.NewCredential, sandbox: str = "prod"
) -> Tenant:
    response = await login(client, credential.client_id, credential.client_secret)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return Tenant(credential.org, sandbox, credential.client_id, credential.client_secret, token)


async def create(app: Any, org: str | None = None, **options: Any) -> tenants.NewCredential:
    org = org or f"C{uuid.uuid4().hex[:12].upper()}@AdobeOrg"
    async with _services(app).db.write() as conn:
        return await tenants.create_credential(conn, org, options.pop("sandbox", "prod"), **options)


def invalid_token(response: httpx.Response, why: str = "") -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == "401013"
    assert why in response.json()["detail"]


# -- revocation and rotation, on every worker --------------------------------------------------


async def test_a_revocation_ends_tokens_on_another_worker(make_app):
    worker_a = make_app()
    worker_b = make_app(credential_poll_seconds=0)  # checks on every request: no waiting here
    async with http(worker_a) as a, http(worker_b) as b:
        tenant = await tenant_of(worker_a, a, await create(worker_a, all_sandboxes=True))
        assert (await b.get(TAGS, headers=tenant.headers)).status_code == 200
        async with _services(worker_a).db.write() as conn:  # as the CLI does
            await tenants.revoke_credential(conn, tenant.client_id)
        invalid_token(await b.get(TAGS, headers=tenant.headers), "was revoked")
        invalid_token(await a.get(TAGS, headers=tenant.headers))  # its own: invalidated


async def test_the_revocation_check_is_cached_for_the_poll_interval_only(make_app):
    """What bounds the delay is credential_poll_seconds: within it a worker answers from
    memory (no query per request), and the next check after it sees the revocation."""
    writer = make_app()
    worker = make_app(credential_poll_seconds=3600)
    cache = _services(worker).credentials
    async with http(writer) as w, http(worker) as client:
        tenant = await tenant_of(writer, w, await create(writer, all_sandboxes=True))
        assert (await client.get(TAGS, headers=tenant.headers)).status_code == 200
        checks = cache.checks
        for _ in range(20):
            assert (await client.get(TAGS, headers=tenant.headers)).status_code == 200
        assert cache.checks == checks  # twenty requests, no credential query
        async with _services(writer).db.write() as conn:
            await tenants.revoke_credential(conn, tenant.client_id)
        # Still within the interval: this worker has not looked yet.
        assert (await client.get(TAGS, headers=tenant.headers)).status_code == 200
        cache.poll_seconds = 0  # the interval has passed
        invalid_token(await client.get(TAGS, headers=tenant.headers))
        loads = cache.loads
        invalid_token(await client.get(TAGS, headers=tenant.headers))
        assert cache.loads == loads  # the version did not move: the table is not read again


async def test_a_credential_created_after_the_last_check_works_at_once(make_app):
    worker = make_app(credential_poll_seconds=3600)
    async with http(worker) as client:
        first = await tenant_of(worker, client, await create(worker, all_sandboxes=True))
        assert (await client.get(TAGS, headers=first.headers)).status_code == 200
        second = await tenant_of(worker, client, await create(worker, all_sandboxes=True))
        assert (await client.get(TAGS, headers=second.headers)).status_code == 200


async def test_rotation_ends_the_old_secret_and_its_tokens(make_app):
    worker_a = make_app()
    worker_b = make_app(credential_poll_seconds=0)
    async with http(worker_a) as a, http(worker_b) as b:
        old = await tenant_of(worker_a, a, await create(worker_a, all_sandboxes=True))
        async with _services(worker_a).db.write() as conn:
            rotated = await tenants.rotate_credential(conn, old.client_id)
        assert rotated is not None
        assert rotated.client_secret != old.client_secret
        invalid_token(await b.get(TAGS, headers=old.headers), "was rotated")
        refused = await login(b, old.client_id, old.client_secret)
        assert refused.status_code == 401, refused.text
        new = await tenant_of(worker_b, b, rotated)
        assert (await b.get(TAGS, headers=new.headers)).status_code == 200
        assert (await a.get(TAGS, headers=new.headers)).status_code == 200


# -- the sandbox of a credential ---------------------------------------------------------------


async def test_a_sandbox_credential_is_limited_to_its_sandbox(app, client):
    credential = await create(app, sandbox="dev")
    assert credential.sandbox == "dev"
    async with _services(app).db.write() as conn:
        await tenants.ensure_sandbox(conn, credential.org, "prod")
    tenant = await tenant_of(app, client, credential, "dev")
    assert (await client.get(TAGS, headers=tenant.headers)).status_code == 200
    for other in ("prod", "no-such-sandbox"):  # existing or not: the same answer
        response = await client.get(TAGS, headers=tenant.in_sandbox(other).headers)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "may only be used in sandbox 'dev'" in response.json()["detail"]
    # Without x-sandbox-name the default, prod, is asked for: refused too.
    headers = {k: v for k, v in tenant.headers.items() if k != "x-sandbox-name"}
    assert (await client.get(TAGS, headers=headers)).status_code == 403
    # The container list shows its own sandbox only, and the legacy endpoint by container id
    # refuses the other one.
    listed = await client.get("/data/core/ods/containers", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    assert [c["sandboxName"] for c in listed.json()["results"]] == ["dev"]
    async with _services(app).db.read() as conn:
        prod = await tenants.get_sandbox(conn, credential.org, "prod")
    assert prod is not None
    response = await client.post(
        f"/data/core/ode/{prod.container_id}/decisions", headers=tenant.headers, json={}
    )
    assert response.status_code == 403, response.text
    for legacy_read in ("offers?activityId=x", "diagnostics"):
        response = await client.get(
            f"/data/core/ode/{prod.container_id}/{legacy_read}", headers=tenant.headers
        )
        assert response.status_code == 403, response.text
    # So does the xcore container discovery.
    home = await client.get("/data/core/xcore/?product=acp", headers=tenant.headers)
    containers = home.json()["_embedded"]["https://ns.adobe.com/experience/xcore/container"]
    assert [c["_instance"]["parentName"] for c in containers] == ["dev"]


async def test_an_org_wide_credential_uses_every_sandbox(app, client):
    credential = await create(app, sandbox="dev", all_sandboxes=True)
    assert credential.sandbox is None
    async with _services(app).db.write() as conn:
        await tenants.ensure_sandbox(conn, credential.org, "prod")
    tenant = await tenant_of(app, client, credential, "dev")
    for name in ("dev", "prod"):
        response = await client.get(TAGS, headers=tenant.in_sandbox(name).headers)
        assert response.status_code == 200, response.text


# -- admin endpoints ---------------------------------------------------------------------------


async def test_admin_endpoints_need_an_admin_credential(app, client, tenant):
    assert (await client.get(ADMIN, headers=tenant.headers)).status_code == 403
    response = await client.post(f"{ADMIN}/{tenant.client_id}/rotate", headers=tenant.headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    headers = {**tenant.headers, "Authorization": "Bearer nope"}
    invalid_token(await client.get(ADMIN, headers=headers))


async def test_a_token_naming_another_org_than_its_credentials_is_refused(app, client, tenant):
    """Only we can sign tokens, but the credential's org is what counts, not the token's."""
    from conftest import SIGNING_KEY
    from offerbase.api import tokens

    other = "ELSEWHERE@AdobeOrg"
    token = tokens.issue(tenant.client_id, other, SIGNING_KEY, 3600)
    headers = {**tenant.headers, "Authorization": f"Bearer {token}", "x-gw-ims-org-id": other}
    invalid_token(await client.get(TAGS, headers=headers))


async def test_an_admin_manages_its_organizations_credentials(make_app):
    # A long poll interval: what the admin changes through this worker is in force at once
    # all the same (it invalidates the worker's cache).
    app = make_app(credential_poll_seconds=3600)
    async with http(app) as client:
        admin_credential = await create(app, admin=True)
        assert admin_credential.admin
        assert admin_credential.sandbox is None
        admin = await tenant_of(app, client, admin_credential)
        member = await create(app, admin_credential.org, sandbox="dev", name="web")
        stranger = await create(app)  # another organization

        listed = await client.get(ADMIN, headers=admin.headers)
        assert listed.status_code == 200, listed.text
        results = listed.json()["results"]
        assert {c["client_id"] for c in results} == {admin.client_id, member.client_id}
        shown = next(c for c in results if c["client_id"] == member.client_id)
        assert shown == {
            "client_id": member.client_id,
            "org": member.org,
            "name": "web",
            "sandbox": "dev",
            "admin": False,
            "created": shown["created"],
            "revoked": None,
        }
        assert "hash" not in listed.text
        assert "secret" not in listed.text

        # Another organization's credential is not there to revoke or rotate.
        for action in ("revoke", "rotate"):
            response = await client.post(
                f"{ADMIN}/{stranger.client_id}/{action}", headers=admin.headers
            )
            assert response.status_code == 404, response.text
        ok = await login(client, stranger.client_id, stranger.client_secret)
        assert ok.status_code == 200

        member_tenant = await tenant_of(app, client, member, "dev")
        rotated = await client.post(f"{ADMIN}/{member.client_id}/rotate", headers=admin.headers)
        assert rotated.status_code == 200, rotated.text
        secret = rotated.json()["client_secret"]
        assert secret != member.client_secret
        invalid_token(await client.get(TAGS, headers=member_tenant.headers))
        assert (await login(client, member.client_id, secret)).status_code == 200
        member_tenant = await tenant_of(
            app,
            client,
            tenants.NewCredential(member.client_id, secret, member.org, "dev", False),
            "dev",
        )
        assert (await client.get(TAGS, headers=member_tenant.headers)).status_code == 200

        revoked = await client.post(f"{ADMIN}/{member.client_id}/revoke", headers=admin.headers)
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked"] is not None
        assert (await login(client, member.client_id, secret)).status_code == 401
        invalid_token(await client.get(TAGS, headers=member_tenant.headers))
        again = await client.post(f"{ADMIN}/{member.client_id}/revoke", headers=admin.headers)
        assert again.json()["revoked"] == revoked.json()["revoked"]
        conflict = await client.post(f"{ADMIN}/{member.client_id}/rotate", headers=admin.headers)
        assert conflict.status_code == 409, conflict.text
