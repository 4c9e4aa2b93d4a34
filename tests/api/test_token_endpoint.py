"""POST /ims/token/v3 under attack: secrets in URLs, guessing, unknown client ids (issue 9.3).

Each test that counts failures makes apps of its own (limits of its own) and calls from a
client address of its own, so neither the shared app nor another test (or a previous run,
through Redis) shares its windows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from conftest import _services, make_tenant
from offerbase.store import tenants

TOKEN = "/ims/token/v3"
REDIS_URL = os.environ.get("OFFERBASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def form(client_id: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


def oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["error_description"]


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """`clients(app, address)`: an HTTP client to `app` that calls from `address`."""
    opened: list[httpx.AsyncClient] = []

    def make(app: Any, address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40_000))
        http = httpx.AsyncClient(transport=transport, base_url="http://offerbase.test")
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


def address() -> str:
    """A documentation-range address (RFC 5737) of the test's own; no traffic goes there."""
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}-{uuid.uuid4().hex[:6]}"


async def credential(app: Any) -> tenants.NewCredential:
    async with _services(app).db.write() as conn:
        return await tenants.create_credential(conn, f"T{uuid.uuid4().hex[:12]}@AdobeOrg")


async def test_client_secret_in_the_query_string_is_refused(app, client, tenant):
    query = {"grant_type": "client_credentials", "client_id": tenant.client_id}
    # The right secret, in the URL: refused, and no token issued.
    response = await client.post(TOKEN, params={**query, "client_secret": tenant.client_secret})
    oauth_error(response, 400, "invalid_request")
    assert "query string" in response.json()["error_description"]
    # Also when the body carries it as well: a secret in a URL is leaked whatever else is sent.
    response = await client.post(
        TOKEN,
        params={"client_secret": tenant.client_secret},
        data=form(tenant.client_id, tenant.client_secret),
    )
    oauth_error(response, 400, "invalid_request")
    # The other fields may still come in the query (as before); the secret in the body is fine.
    response = await client.post(TOKEN, params=query, data={"client_secret": tenant.client_secret})
    assert response.status_code == 200, response.text


async def test_failures_are_throttled_per_client_id(make_app, clients):
    app = make_app(token_failures_per_client=3, token_failures_per_address=1000)
    victim = await credential(app)
    http = clients(app, address())
    for _ in range(3):
        oauth_error(
            await http.post(TOKEN, data=form(victim.client_id, "guess")), 401, "invalid_client"
        )
    checker = _services(app).secrets
    hashed = checker.hashed
    # The limit is reached: even the right secret waits, and nothing is hashed meanwhile.
    for secret in ("guess", victim.client_secret):
        response = await http.post(TOKEN, data=form(victim.client_id, secret))
        oauth_error(response, 429, "slow_down")
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert checker.hashed == hashed
    # From another address too (the limit is the client id's)...
    other = clients(app, address())
    oauth_error(
        await other.post(TOKEN, data=form(victim.client_id, victim.client_secret)), 429, "slow_down"
    )
    # ...while another client id is not affected, from the same address.
    bystander = await credential(app)
    ok = await http.post(TOKEN, data=form(bystander.client_id, bystander.client_secret))
    assert ok.status_code == 200, ok.text


async def test_failures_are_throttled_per_address(make_app, clients):
    app = make_app(token_failures_per_client=1000, token_failures_per_address=3)
    http = clients(app, address())
    for _ in range(3):  # three different client ids, unknown ones
        response = await http.post(TOKEN, data=form(uuid.uuid4().hex, "guess"))
        oauth_error(response, 401, "invalid_client")
    legit = await credential(app)
    response = await http.post(TOKEN, data=form(legit.client_id, legit.client_secret))
    oauth_error(response, 429, "slow_down")
    assert int(response.headers["Retry-After"]) >= 1
    elsewhere = clients(app, address())
    ok = await elsewhere.post(TOKEN, data=form(legit.client_id, legit.client_secret))
    assert ok.status_code == 200, ok.text


async def test_successes_are_not_counted(make_app, clients):
    app = make_app(token_failures_per_client=2, token_failures_per_address=2)
    legit = await credential(app)
    http = clients(app, address())
    for _ in range(4):
        ok = await http.post(TOKEN, data=form(legit.client_id, legit.client_secret))
        assert ok.status_code == 200, ok.text


async def test_an_unknown_client_id_costs_one_hash_like_a_known_one(app, client, tenant):
    """Timing tells nothing: every answer to a well-formed request ran scrypt exactly once,
    whether the client id exists (wrong secret), does not, or is revoked."""
    checker = _services(app).secrets
    before = checker.hashed
    unknown = await client.post(TOKEN, data=form(uuid.uuid4().hex, "guess"))
    wrong = await client.post(TOKEN, data=form(tenant.client_id, "guess"))
    assert (unknown.status_code, wrong.status_code) == (401, 401)
    assert unknown.json() == wrong.json()  # the same answer, too
    assert checker.hashed == before + 2


async def test_a_revoked_credential_gets_no_token(app, client):
    tenant = await make_tenant(app, client)
    async with _services(app).db.write() as conn:
        await tenants.revoke_credential(conn, tenant.client_id)
    checker = _services(app).secrets
    before = checker.hashed
    response = await client.post(TOKEN, data=form(tenant.client_id, tenant.client_secret))
    oauth_error(response, 401, "invalid_client")
    assert checker.hashed == before + 1


async def test_redis_shares_the_limit_between_workers(make_app, clients):
    from redis.asyncio import Redis

    probe = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await probe.ping()
    except Exception as exc:  # no Redis here
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Redis does not answer at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    finally:
        await probe.aclose()
    options = {"redis_url": REDIS_URL, "token_failures_per_client": 4}
    first, second = make_app(**options), make_app(**options)
    victim = await credential(first)
    here = address()
    for app in (first, second, first, second):
        response = await clients(app, here).post(TOKEN, data=form(victim.client_id, "guess"))
        oauth_error(response, 401, "invalid_client")
    for app in (first, second):  # four failures in all: both workers refuse now
        response = await clients(app, here).post(TOKEN, data=form(victim.client_id, "guess"))
        oauth_error(response, 429, "slow_down")


# -- IMS v2 and the shapes Adobe's own clients send -----------------------------------------


@pytest.mark.parametrize("path", ["/ims/token/v2", "/ims/token/v3"])
async def test_v2_and_v3_take_a_form_body_and_query_fields_but_the_secret(path, client, tenant):
    # Form body (curl -d, aio-lib's multipart form) on both versions.
    response = await client.post(path, data=form(tenant.client_id, tenant.client_secret))
    assert response.status_code == 200, response.text
    multipart = await client.post(
        path, files={k: (None, v) for k, v in form(tenant.client_id, tenant.client_secret).items()}
    )
    assert multipart.status_code == 200, multipart.text
    # Adobe's v2 samples: client_id (and grant_type, scope) in the query, the secret in the body.
    query = {"client_id": tenant.client_id, "grant_type": "client_credentials", "scope": "openid"}
    split = await client.post(path, params=query, data={"client_secret": tenant.client_secret})
    assert split.status_code == 200, split.text
    # The secret in the query string is refused by default, and the message says how to allow it.
    everything = await client.post(path, params={**query, "client_secret": tenant.client_secret})
    oauth_error(everything, 400, "invalid_request")
    assert "OFFERBASE_TOKEN_SECRET_IN_QUERY" in everything.json()["error_description"]


@pytest.mark.parametrize("app_options", [{"token_secret_in_query": True}], indirect=True)
async def test_the_secret_in_the_query_string_can_be_allowed_for_a_migration(client, tenant):
    # Adobe's Identity Management Service Postman collection: every field in the query.
    query = {**form(tenant.client_id, tenant.client_secret), "scope": "openid,AdobeID"}
    response = await client.post("/ims/token/v2", params=query)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"


@pytest.mark.parametrize("path", ["/ims/token/v2", "/ims/token/v3"])
async def test_a_json_body_is_told_to_be_form_encoded(path, client, tenant):
    response = await client.post(path, json=form(tenant.client_id, tenant.client_secret))
    oauth_error(response, 400, "invalid_request")
    description = response.json()["error_description"]
    assert "form-encoded" in description
    assert "application/json" in description
