"""The seed documents' requests, replayed exactly as their curl commands send them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from factories import RECEIPT_KEYS

FIXTURES = Path(__file__).parents[1] / "fixtures" / "seeds"
PAGES = FIXTURES / "pages"
CREATE_BODY = (FIXTURES / "fallback-offer-create.json").read_text()
PATCH_BODY = (FIXTURES / "fallback-offer-patch.json").read_text()
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def curl_headers(tenant, *, double_space: bool = False) -> dict[str, str]:
    """The five -H lines of the seed's curl, with the placeholders filled in."""
    bearer = "Bearer  " if double_space else "Bearer "
    return {
        "Content-Type": "application/json",
        "Authorization": bearer + tenant.token,
        "x-api-key": tenant.client_id,
        "x-gw-ims-org-id": tenant.org,
        "x-sandbox-name": tenant.sandbox,
    }


async def create_placement(client, tenant, placement_id="offerPlacement1234"):
    body = (FIXTURES / "placement-web.json").read_text()
    response = await client.post(
        f"/data/core/dps/placements/{placement_id}", content=body, headers=curl_headers(tenant)
    )
    assert response.status_code == 201, response.text


def test_fixtures_are_the_seed_bodies():
    pages = sorted(PAGES.glob("*.md"))
    assert len(pages) == 5
    for seed in pages:
        text = seed.read_text()
        bodies = re.findall(r"-d '(.*?)'\n```", text, flags=re.S)
        assert bodies, seed.name
        for body in bodies:
            parsed = json.loads(body)
            expected = json.loads(PATCH_BODY if isinstance(parsed, list) else CREATE_BODY)
            assert parsed == expected, seed.name


async def test_seed_create_fallback_offer(client, tenant):
    await create_placement(client, tenant)
    response = await client.post(
        "/data/core/dps/offers?offer-type=fallback",
        content=CREATE_BODY,
        headers=curl_headers(tenant),
    )
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert set(receipt) == RECEIPT_KEYS
    assert receipt["etag"] == 1
    assert receipt["id"].startswith("dps:fallback-offer:")
    assert ISO_MS_Z.match(receipt["createdDate"])
    assert receipt["createdByClientId"] == tenant.client_id

    read = await client.get(
        f"/data/core/dps/offers/{receipt['id']}?offer-type=fallback", headers=curl_headers(tenant)
    )
    assert read.status_code == 200
    body = read.json()
    assert body["name"] == "Test Fallback Offer DPS"
    assert body["representations"][0]["components"][0]["deliveryURL"] == "https://mysite.com"
    assert body["schemas"] == [
        "https://ns.adobe.com/experience/offer-management/fallback-offer;version=0.8"
    ]
    assert read.headers["etag"] == '"1"'


async def test_seed_create_with_id_then_patch_with_double_space_bearer(client, tenant):
    await create_placement(client, tenant)
    created = await client.post(
        "/data/core/dps/offers/fallbackOffer1234?offer-type=fallback",
        content=CREATE_BODY,
        headers=curl_headers(tenant),
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "fallbackOffer1234"

    patched = await client.patch(
        "/data/core/dps/offers/fallbackOffer1234?offer-type=fallback",
        content=PATCH_BODY,
        headers=curl_headers(tenant, double_space=True),
    )
    assert patched.status_code == 200, patched.text
    assert set(patched.json()) == RECEIPT_KEYS
    assert patched.json()["etag"] == 2

    read = await client.get(
        "/data/core/dps/offers/fallbackOffer1234?offer-type=fallback", headers=curl_headers(tenant)
    )
    assert read.json()["name"] == "Updated fallback offer"
    assert read.json()["description"] == "Updated fallback offer description"
    assert read.json()["etag"] == 2

    again = await client.post(
        "/data/core/dps/offers/fallbackOffer1234?offer-type=fallback",
        content=CREATE_BODY,
        headers=curl_headers(tenant),
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_seed_requires_the_placement_to_exist(client, tenant):
    response = await client.post(
        "/data/core/dps/offers?offer-type=fallback",
        content=CREATE_BODY,
        headers=curl_headers(tenant),
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["pointer"] == "/representations/0/placement"
    listed = await client.get(
        "/data/core/dps/offers?offer-type=fallback", headers=curl_headers(tenant)
    )
    assert listed.json()["total"] == 0


async def test_endpoint_path_with_trailing_slash(client, tenant):
    """Adobe gives `{ENDPOINT_PATH}` as `https://platform.adobe.io/data/core/dps/` too."""
    await create_placement(client, tenant)
    response = await client.post(
        "/data/core/dps//offers?offer-type=fallback",
        content=CREATE_BODY,
        headers=curl_headers(tenant),
    )
    assert response.status_code == 201, response.text
