"""Adobe's gateway headers and bodies (Adobe's Offer Library API), and the token endpoint."""

from __future__ import annotations

import time

import pytest
from factories import Api, body, problem, url

from conftest import SIGNING_KEY, make_tenant
from offerbase.api import tokens

TAGS = "/data/core/dps/tags"


def gateway(response, status: int, code: str, header: str, detail: str) -> None:
    """Adobe's gateway body (`error_code`, `message`), plus what a person needs: `detail`
    (containing `detail`) and the `header` at fault."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert payload["error_code"] == code
    assert isinstance(payload["message"], str)
    assert payload["message"]
    assert payload["header"] == header
    assert detail in payload["detail"], payload["detail"]


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name.lower()}


async def assert_no_tags(client, tenant) -> None:
    listed = await client.get(TAGS, headers=tenant.headers)
    assert listed.status_code == 200
    assert listed.json()["total"] == 0


async def test_missing_authorization_is_403010(client, tenant):
    response = await client.post(
        TAGS, json=body("tag"), headers=without(tenant.headers, "Authorization")
    )
    gateway(response, 403, "403010", "Authorization", "The Authorization header is missing.")
    assert response.json()["message"] == "Oauth token is missing."
    await assert_no_tags(client, tenant)


NOT_OURS = "not issued by this server"
NOT_BEARER = "must be `Bearer <access token>`"


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        ("Bearer not-a-token", NOT_OURS),
        ("Bearer a.b.c", NOT_OURS),
        ("Basic dXNlcjpwYXNz", NOT_BEARER),
        ("Bearer", NOT_BEARER),
        ("token-without-scheme", NOT_BEARER),
    ],
)
async def test_bad_token_is_401013(client, tenant, authorization, detail):
    headers = {**tenant.headers, "Authorization": authorization}
    response = await client.post(TAGS, json=body("tag"), headers=headers)
    gateway(response, 401, "401013", "Authorization", detail)
    assert response.json()["message"] == "Oauth token is not valid"
    await assert_no_tags(client, tenant)


async def test_expired_token_is_401013(client, tenant):
    expired = tokens.issue(
        tenant.client_id, tenant.org, SIGNING_KEY, ttl_seconds=60, now=time.time() - 3600
    )
    headers = {**tenant.headers, "Authorization": f"Bearer {expired}"}
    # Told apart from an invalid token: it expired, and when.
    gateway(await client.get(TAGS, headers=headers), 401, "401013", "Authorization", "expired at")
    # The same claims, not expired, pass: only the expiry made the difference.
    fresh = tokens.issue(tenant.client_id, tenant.org, SIGNING_KEY, ttl_seconds=60)
    ok = await client.get(TAGS, headers={**tenant.headers, "Authorization": f"Bearer {fresh}"})
    assert ok.status_code == 200, ok.text


async def test_forged_token_is_401013(client, tenant):
    forged = tokens.issue(tenant.client_id, tenant.org, "someone-elses-key-" + "y" * 32, 3600)
    headers = {**tenant.headers, "Authorization": f"Bearer {forged}"}
    response = await client.post(TAGS, json=body("tag"), headers=headers)
    gateway(response, 401, "401013", "Authorization", NOT_OURS)
    # A tampered payload with the original signature fails too.
    head, _payload, signature = tenant.token.split(".")
    other = tokens.issue(tenant.client_id, "OTHER@AdobeOrg", SIGNING_KEY, 3600).split(".")[1]
    tampered = f"{head}.{other}.{signature}"
    headers = {**tenant.headers, "Authorization": f"Bearer {tampered}"}
    gateway(await client.get(TAGS, headers=headers), 401, "401013", "Authorization", NOT_OURS)
    await assert_no_tags(client, tenant)


async def test_missing_api_key_is_403000(client, tenant):
    response = await client.post(
        TAGS, json=body("tag"), headers=without(tenant.headers, "x-api-key")
    )
    gateway(response, 403, "403000", "x-api-key", "The x-api-key header is missing.")
    assert response.json()["message"] == "Api Key is required"
    await assert_no_tags(client, tenant)


async def test_api_key_not_the_tokens_client_is_403003(client, tenant):
    headers = {**tenant.headers, "x-api-key": "some-other-client"}
    response = await client.post(TAGS, json=body("tag"), headers=headers)
    gateway(response, 403, "403003", "x-api-key", "the client id the token was issued to")
    assert response.json()["message"] == "Api Key is invalid"
    await assert_no_tags(client, tenant)


async def test_missing_org_header_is_400003(client, tenant):
    response = await client.post(
        TAGS, json=body("tag"), headers=without(tenant.headers, "x-gw-ims-org-id")
    )
    gateway(response, 400, "400003", "x-gw-ims-org-id", "The x-gw-ims-org-id header is missing.")
    await assert_no_tags(client, tenant)


async def test_token_used_with_another_orgs_header_is_refused(app, client, tenant):
    other = await make_tenant(app, client)
    other_entity = await Api(client, other).create("tag")
    # tenant's token, other org in the header (and the matching api key of the token).
    headers = {**tenant.headers, "x-gw-ims-org-id": other.org}
    response = await client.get(url("tag", other_entity), headers=headers)
    gateway(response, 403, "403025", "x-gw-ims-org-id", "the organization of the token's")
    response = await client.post(TAGS, json=body("tag"), headers=headers)
    assert response.status_code == 403
    assert await Api(client, other).ids("tag") == [other_entity]
    await assert_no_tags(client, tenant)


async def test_bearer_with_several_spaces_is_accepted(client, tenant):
    for spaces in (" ", "  ", "     "):
        headers = {**tenant.headers, "Authorization": f"Bearer{spaces}{tenant.token}"}
        response = await client.get(TAGS, headers=headers)
        assert response.status_code == 200, (spaces, response.text)
    headers = {**tenant.headers, "Authorization": f"bearer {tenant.token}"}
    assert (await client.get(TAGS, headers=headers)).status_code == 200


async def test_sandbox_header_absent_means_prod(client, tenant):
    prod = Api(client, tenant)
    tag = await prod.create("tag")
    response = await client.get(url("tag", tag), headers=without(tenant.headers, "x-sandbox-name"))
    assert response.status_code == 200, response.text
    created = await client.post(
        TAGS, json=body("tag"), headers=without(tenant.headers, "x-sandbox-name")
    )
    assert created.status_code == 201
    assert created.json()["sandboxId"] == (await prod.post("tag", body("tag"))).json()["sandboxId"]
    assert len(await prod.ids("tag")) == 3
    assert await Api(client, tenant.in_sandbox("dev")).ids("tag") == []


async def test_unknown_sandbox_is_404_problem(client, tenant):
    headers = {**tenant.headers, "x-sandbox-name": "nosuchsandbox"}
    payload = problem(await client.post(TAGS, json=body("tag"), headers=headers), 404)
    assert "nosuchsandbox" in payload["detail"]
    await assert_no_tags(client, tenant)


async def test_another_orgs_sandbox_name_is_not_reachable(app, client, tenant):
    other = await make_tenant(app, client, ("prod", "staging"))
    headers = {**tenant.headers, "x-sandbox-name": "staging"}
    problem(await client.get(TAGS, headers=headers), 404)
    assert other.org != tenant.org


async def test_token_endpoint(client, tenant):
    good = {
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
    }
    response = await client.post("/ims/token/v3", data=good)
    assert response.status_code == 200
    issued = response.json()
    assert issued["token_type"] == "bearer"
    assert issued["expires_in"] > 0
    headers = {**tenant.headers, "Authorization": f"Bearer {issued['access_token']}"}
    assert (await client.get(TAGS, headers=headers)).status_code == 200

    wrong_secret = await client.post("/ims/token/v3", data={**good, "client_secret": "nope"})
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    assert "access_token" not in wrong_secret.json()

    unknown_client = await client.post("/ims/token/v3", data={**good, "client_id": "nobody"})
    assert unknown_client.status_code == 401
    assert unknown_client.json()["error"] == "invalid_client"

    wrong_grant = await client.post("/ims/token/v3", data={**good, "grant_type": "password"})
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"

    missing = await client.post("/ims/token/v3", data={"grant_type": "client_credentials"})
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
