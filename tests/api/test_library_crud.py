"""The seven operations on every collection, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from factories import (
    ALL_KINDS,
    NS,
    READ_METADATA,
    RECEIPT_KEYS,
    SCHEMAS,
    Api,
    body,
    html_representation,
    pointers,
    problem,
    url,
)

ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ID_WORDS = {
    "personalized-offer": "personalized-offer",
    "fallback-offer": "fallback-offer",
    "placement": "offer-placement",
    "collection": "offer-filter",
    "tag": "tag",
    "decision-rule": "eligibility-rule",
    "ranking-formula": "ranking-function",
    "decision": "offer-activity",
    "ranking-strategy": "ranking-strategy",
}


@pytest.fixture
def api(client, tenant) -> Api:
    return Api(client, tenant)


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_create_read_list_delete(api, tenant, kind):
    sent = body(kind, description="first")
    created = await api.post(kind, sent)
    assert created.status_code == 201, created.text
    receipt = created.json()
    assert set(receipt) == RECEIPT_KEYS
    assert receipt["etag"] == 1
    assert re.fullmatch(rf"dps:{ID_WORDS[kind]}:[0-9a-f]{{1,16}}", receipt["id"]), receipt["id"]
    assert ISO_MS_Z.match(receipt["createdDate"])
    assert ISO_MS_Z.match(receipt["lastModifiedDate"])
    assert receipt["createdByClientId"] == receipt["lastModifiedByClientId"] == tenant.client_id
    assert created.headers["etag"] == '"1"'
    entity_id = receipt["id"]

    read = await api.get(kind, entity_id)
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    form = read.json()
    assert READ_METADATA <= set(form)
    assert form["id"] == entity_id
    assert form["etag"] == 1
    assert form["schemas"] == [SCHEMAS[kind]]
    assert form["createdBy"] == receipt["createdBy"]
    assert form["lastModifiedBy"] == receipt["lastModifiedBy"]
    assert "sandboxId" not in form
    assert "createdByClientId" not in form
    for key, value in sent.items():
        assert form[key] == value, key

    assert entity_id in await api.ids(kind)

    deleted = await api.delete(kind, entity_id)
    assert deleted.status_code == 200
    assert deleted.content == b""
    problem(await api.get(kind, entity_id), 404)
    assert entity_id not in await api.ids(kind)
    problem(await api.delete(kind, entity_id), 404)


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_create_with_chosen_id_then_409(api, kind):
    chosen = f"my{kind.title().replace('-', '')}1234"
    first = await api.post(kind, body(kind), chosen)
    assert first.status_code == 201, first.text
    assert first.json()["id"] == chosen
    assert first.headers["location"].endswith(f"/{chosen}")
    original = await api.read(kind, chosen)

    again = await api.post(kind, body(kind, name="Other name"), chosen)
    problem(again, 409)
    assert await api.read(kind, chosen) == original
    assert (await api.ids(kind)).count(chosen) == 1


async def test_chosen_id_taken_by_another_kind_is_409(api):
    await api.create("placement", entity_id="shared1234")
    problem(await api.post("tag", body("tag"), "shared1234"), 409)
    assert await api.ids("tag") == []


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_patch_every_op(api, kind):
    entity_id = await api.create(kind, description="before")
    ops = [
        {"op": "test", "path": "/description", "value": "before"},
        {"op": "replace", "path": "/description", "value": "after"},
        {"op": "copy", "from": "/description", "path": "/name"},
        {"op": "add", "path": "/description", "value": "added"},
        {"op": "move", "from": "/description", "path": "/name"},
        {"op": "add", "path": "/description", "value": "to remove"},
        {"op": "remove", "path": "/description"},
    ]
    response = await api.patch(kind, entity_id, ops)
    assert response.status_code == 200, response.text
    assert set(response.json()) == RECEIPT_KEYS
    assert response.json()["etag"] == 2
    assert response.headers["etag"] == '"2"'
    form = await api.read(kind, entity_id)
    assert form["name"] == "added"
    assert "description" not in form
    assert form["etag"] == 2
    assert form["modified"] >= form["created"]


@pytest.mark.parametrize("kind", [k for k in ALL_KINDS if k != "tag"])
async def test_patch_array_ops(api, kind):
    entity_id = await api.create(kind, labels=["core/C1", "core/C2"])
    ops = [
        {"op": "add", "path": "/labels/-", "value": "core/C3"},
        {"op": "remove", "path": "/labels/0"},
        {"op": "copy", "from": "/labels/0", "path": "/labels/-"},
        {"op": "move", "from": "/labels/1", "path": "/labels/0"},
        {"op": "test", "path": "/labels", "value": ["core/C3", "core/C2", "core/C2"]},
        {"op": "add", "path": "/labels/1", "value": "core/C9"},
    ]
    response = await api.patch(kind, entity_id, ops)
    assert response.status_code == 200, response.text
    # [C1, C2] +C3 -> [C1, C2, C3]; remove 0 -> [C2, C3]; copy 0 -> [C2, C3, C2]; move 1 -> 0
    assert (await api.read(kind, entity_id))["labels"] == [
        "core/C3",
        "core/C9",
        "core/C2",
        "core/C2",
    ]


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_failing_test_op_is_409_and_changes_nothing(api, kind):
    entity_id = await api.create(kind, description="before")
    before = await api.read(kind, entity_id)
    response = await api.patch(
        kind,
        entity_id,
        [
            {"op": "replace", "path": "/name", "value": "Should not stick"},
            {"op": "test", "path": "/description", "value": "something else"},
        ],
    )
    payload = problem(response, 409)
    assert pointers(payload) == ["/1/value"]
    assert await api.read(kind, entity_id) == before


async def test_failing_op_in_the_middle_refuses_the_whole_patch(api):
    entity_id = await api.create("tag", description="before")
    before = await api.read("tag", entity_id)
    response = await api.patch(
        "tag",
        entity_id,
        [
            {"op": "replace", "path": "/name", "value": "Changed"},
            {"op": "remove", "path": "/nothing/here"},
            {"op": "replace", "path": "/description", "value": "Changed too"},
        ],
    )
    payload = problem(response, 422)
    assert pointers(payload) == ["/1/path"]
    assert await api.read("tag", entity_id) == before


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_put_replaces_and_ignores_echoed_metadata(api, kind):
    extra = {} if kind == "tag" else {"labels": ["core/C1"]}
    entity_id = await api.create(kind, description="to be dropped", **extra)
    form = await api.read(kind, entity_id)
    replacement = body(kind, name="Replaced")
    # Echo the read form's metadata back, with values that must be ignored.
    echoed = {
        **replacement,
        "id": "someOtherId",
        "etag": 99,
        "created": "2000-01-01T00:00:00.000Z",
        "modified": "2000-01-01T00:00:00.000Z",
        "createdBy": "mallory",
        "lastModifiedBy": "mallory",
        "schemas": form["schemas"],
    }
    response = await api.put(kind, entity_id, echoed)
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["etag"] == 2
    assert receipt["id"] == entity_id
    after = await api.read(kind, entity_id)
    assert after["name"] == "Replaced"
    assert "description" not in after
    assert "labels" not in after
    assert after["id"] == entity_id
    assert after["etag"] == 2
    assert after["created"] == form["created"]
    assert after["createdBy"] == form["createdBy"]
    assert after["schemas"] == [SCHEMAS[kind]]
    problem(await api.get(kind, "someOtherId"), 404)


async def test_put_of_a_missing_entity_is_404(api):
    problem(await api.put("tag", "nope1234", body("tag")), 404)
    assert await api.ids("tag") == []


async def test_offer_type_required_on_create(api):
    response = await api.client.post(
        "/data/core/dps/offers", json=body("personalized-offer"), headers=api.headers
    )
    payload = problem(response, 400)
    assert "offer-type" in payload["detail"]
    response = await api.client.post(
        "/data/core/dps/offers?offer-type=bogus",
        json=body("personalized-offer"),
        headers=api.headers,
    )
    problem(response, 400)
    listed = await api.client.get("/data/core/dps/offers", headers=api.headers)
    assert listed.json()["total"] == 0


async def test_offer_type_is_case_insensitive_and_optional_on_read(api):
    response = await api.client.post(
        "/data/core/dps/offers?offer-type=PERSONALIZED",
        json=body("personalized-offer"),
        headers=api.headers,
    )
    assert response.status_code == 201, response.text
    offer_id = response.json()["id"]
    fallback_id = await api.create("fallback-offer")

    for query in ("", "?offer-type=Personalized", "?offer-type=personalized"):
        read = await api.client.get(f"/data/core/dps/offers/{offer_id}{query}", headers=api.headers)
        assert read.status_code == 200, (query, read.text)
        assert read.json()["schemas"] == [SCHEMAS["personalized-offer"]]
    # The wrong type does not find it.
    problem(
        await api.client.get(
            f"/data/core/dps/offers/{offer_id}?offer-type=fallback", headers=api.headers
        ),
        404,
    )
    problem(
        await api.client.delete(
            f"/data/core/dps/offers/{offer_id}?offer-type=FALLBACK", headers=api.headers
        ),
        404,
    )
    # Lists: by type, and both without a type.
    assert await api.ids("personalized-offer") == [offer_id]
    assert await api.ids("fallback-offer") == [fallback_id]
    both = await api.client.get("/data/core/dps/offers", headers=api.headers)
    assert {item["id"] for item in both.json()["results"]} == {offer_id, fallback_id}


async def test_spelling_variants_are_read_back_as_written(api):
    """Every accepted spelling is stored and answered as sent (Adobe's lookups echo
    `ranking-strategy`); decisioning reads them canonically (tests/api/test_enum_spellings.py)."""
    tag = await api.create("tag")
    collection = await api.create("collection", filterType="anyTags", ids=[tag])
    assert (await api.read("collection", collection))["filterType"] == "anyTags"
    collection_all = await api.create("collection", filterType="allTags", ids=[tag])
    assert (await api.read("collection", collection_all))["filterType"] == "allTags"

    placement = await api.create("placement", componentType=f"{NS}/content-component-imagelink")
    assert (await api.read("placement", placement))["componentType"] == (
        f"{NS}/content-component-imagelink"
    )

    representation = html_representation(placement)
    representation["components"][0]["type"] = f"{NS}/content-component-html"
    offer = await api.create("personalized-offer", representations=[representation])
    form = await api.read("personalized-offer", offer)
    assert form["representations"][0]["components"][0]["type"] == f"{NS}/content-component-html"

    text_placement = await api.create("placement", componentType=f"{NS}/content-component-text")
    assert (await api.read("placement", text_placement))["componentType"] == (
        f"{NS}/content-component-text"
    )

    fallback = await api.create("fallback-offer")
    strategy = await api.create("ranking-strategy")
    decision = await api.create(
        "decision",
        fallback=fallback,
        criteria=[
            {
                "placements": [placement],
                "rank": {
                    "priority": 0,
                    "order": {
                        "orderEvaluationType": "ranking-strategy",
                        "rankingStrategy": strategy,
                    },
                },
                "optionSelection": {"filter": collection},
            }
        ],
    )
    form = await api.read("decision", decision)
    assert form["criteria"][0]["rank"]["order"]["orderEvaluationType"] == "ranking-strategy"

    formula = await api.create("ranking-formula", returnType={"type": "integer"})
    assert (await api.read("ranking-formula", formula))["returnType"] == {"type": "integer"}


async def test_spelling_variants_in_patch_are_kept_too(api):
    tag = await api.create("tag")
    collection = await api.create("collection", filterType="offers", ids=[])
    response = await api.patch(
        "collection",
        collection,
        [
            {"op": "replace", "path": "/filterType", "value": "anyTags"},
            {"op": "add", "path": "/ids/-", "value": tag},
        ],
    )
    # A tag id is accepted in `ids`: `anyTags` means any-tags.
    assert response.status_code == 200, response.text
    assert (await api.read("collection", collection))["filterType"] == "anyTags"


async def test_ranking_formula_patched_with_a_whole_object_merges(api):
    formula = await api.create("ranking-formula", description="old", labels=["core/C1"])
    # Adobe's RF-update example: `curl -X PATCH` with a JSON object, not a patch array.
    update = {
        "name": "Updated formula",
        "description": "Ranking function description",
        "exdFunction": True,
        "isPure": True,
        "returnType": {"type": "integer"},
        "expression": {
            "type": "PQL",
            "format": "pql/text",
            "value": "offer.rank.priority * 3",
        },
    }
    response = await api.patch("ranking-formula", formula, update)
    assert response.status_code == 200, response.text
    assert response.json()["etag"] == 2
    form = await api.read("ranking-formula", formula)
    assert form["name"] == "Updated formula"
    assert form["isPure"] is True
    assert form["expression"]["value"] == "offer.rank.priority * 3"
    assert form["returnType"] == {"type": "integer"}
    assert form["labels"] == ["core/C1"]  # kept: a merge, not a replace

    # A merge that breaks the formula is refused like any other invalid update.
    bad = await api.patch("ranking-formula", formula, {"expression": {"value": "offer.rank. +"}})
    assert pointers(problem(bad, 422)) == ["/expression/value"]
    assert (await api.read("ranking-formula", formula))["etag"] == 2


async def test_delete_then_recreate_with_same_id(api):
    await api.create("tag", entity_id="tag1234", name="Black Friday")
    assert (await api.delete("tag", "tag1234")).status_code == 200
    again = await api.post("tag", body("tag", name="Black Friday"), "tag1234")
    assert again.status_code == 201, again.text
    assert again.json()["etag"] == 1
    assert (await api.read("tag", "tag1234"))["etag"] == 1


async def test_get_unknown_id_and_unknown_collection(api):
    problem(await api.get("decision", "nope"), 404)
    response = await api.client.get("/data/core/dps/widgets", headers=api.headers)
    assert response.status_code == 404


async def test_url_helper_round_trip():
    assert url("personalized-offer", "x") == "/data/core/dps/offers/x?offer-type=personalized"
    assert url("tag") == "/data/core/dps/tags"
