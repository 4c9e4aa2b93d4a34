"""Referential integrity: names must exist on write; referenced entities cannot be deleted."""

from __future__ import annotations

import pytest
from factories import Api, body, build_graph, criterion, html_representation, pointers, problem


@pytest.fixture
def api(client, tenant) -> Api:
    return Api(client, tenant)


@pytest.mark.parametrize(
    ("kind", "fields", "pointer"),
    [
        (
            "personalized-offer",
            {"representations": [html_representation("missingPlacement")]},
            "/representations/0/placement",
        ),
        (
            "personalized-offer",
            {
                "selectionConstraint": {
                    "profileConstraintType": "eligibilityRule",
                    "eligibilityRule": "missingRule",
                }
            },
            "/selectionConstraint/eligibilityRule",
        ),
        ("personalized-offer", {"tags": ["missingTag"]}, "/tags/0"),
        (
            "fallback-offer",
            {"representations": [html_representation("missingPlacement")]},
            "/representations/0/placement",
        ),
        ("collection", {"filterType": "any-tags", "ids": ["missingTag"]}, "/ids/0"),
        ("collection", {"filterType": "offers", "ids": ["missingOffer"]}, "/ids/0"),
        ("decision", {"fallback": "missingFallback"}, "/fallback"),
        (
            "decision",
            {"criteria": [criterion(["missingPlacement"], "missingCollection")]},
            None,
        ),
    ],
)
async def test_create_naming_a_missing_entity_is_422(api, kind, fields, pointer):
    response = await api.post(kind, body(kind, **fields))
    found = pointers(problem(response, 422))
    if pointer is None:
        assert found == ["/criteria/0/placements/0", "/criteria/0/optionSelection/filter"]
    else:
        assert found == [pointer]
    assert await api.ids(kind) == []


async def test_criterion_naming_a_missing_ranking_strategy_is_422(api):
    placement = await api.create("placement")
    collection = await api.create("collection")
    order = {"orderEvaluationType": "rankingStrategy", "rankingStrategy": "missingStrategy"}
    criteria = [criterion([placement], collection, rank={"order": order})]
    response = await api.post("decision", body("decision", criteria=criteria))
    payload = problem(response, 422)
    assert pointers(payload) == ["/criteria/0/rank/order/rankingStrategy"]
    assert await api.ids("decision") == []
    # A ranking formula is not a ranking strategy.
    order["rankingStrategy"] = await api.create("ranking-formula")
    response = await api.post("decision", body("decision", criteria=criteria))
    assert pointers(problem(response, 422)) == ["/criteria/0/rank/order/rankingStrategy"]


async def test_reference_to_the_wrong_kind_is_422(api):
    tag = await api.create("tag")
    response = await api.post("decision", body("decision", fallback=tag))
    payload = problem(response, 422)
    assert pointers(payload) == ["/fallback"]
    assert "tag" in payload["errors"][0]["detail"]
    assert await api.ids("decision") == []


async def test_update_naming_a_missing_entity_is_422_and_changes_nothing(api):
    ids = await build_graph(api)
    decision = ids["decision"]
    before = await api.read("decision", decision)
    ops = [{"op": "add", "path": "/criteria/0/placements/-", "value": "missingPlacement"}]
    response = await api.patch("decision", decision, ops)
    assert pointers(problem(response, 422)) == ["/criteria/0/placements/1"]
    assert await api.read("decision", decision) == before

    replacement = body("decision", fallback="missingFallback")
    response = await api.put("decision", decision, replacement)
    assert pointers(problem(response, 422)) == ["/fallback"]
    assert await api.read("decision", decision) == before


@pytest.mark.parametrize(
    ("target", "referrers"),
    [
        ("placement", {"personalized-offer", "fallback-offer", "decision"}),
        ("tag", {"personalized-offer", "collection"}),
        ("decision-rule", {"personalized-offer"}),
        ("ranking-formula", {"decision"}),
        ("ranking-strategy", {"decision"}),
        ("fallback-offer", {"decision"}),
        ("collection", {"decision"}),
    ],
)
async def test_delete_of_a_referenced_entity_is_409_listing_referrers(api, target, referrers):
    ids = await build_graph(api)
    before = await api.read(target, ids[target])
    response = await api.delete(target, ids[target])
    payload = problem(response, 409)
    listed = payload["referrers"]
    assert {r["kind"] for r in listed} == referrers
    assert {r["id"] for r in listed} == {ids[k] for k in referrers}
    for referrer in listed:
        assert referrer["pointer"].startswith("/")
    assert await api.read(target, ids[target]) == before

    # Remove the referrers (decision first: it refers to the others), then delete works.
    for kind in ("decision", "collection", "personalized-offer", "fallback-offer"):
        if kind in referrers or (kind == "decision" and target != "decision"):
            if (await api.get(kind, ids[kind])).status_code == 200:
                assert (await api.delete(kind, ids[kind])).status_code == 200
    assert (await api.delete(target, ids[target])).status_code == 200
    problem(await api.get(target, ids[target]), 404)


async def test_dropping_the_reference_by_patch_frees_the_target(api):
    placement = await api.create("placement")
    offer = await api.create("personalized-offer", representations=[html_representation(placement)])
    payload = problem(await api.delete("placement", placement), 409)
    assert payload["referrers"] == [
        {"id": offer, "kind": "personalized-offer", "pointer": "/representations/0/placement"}
    ]
    response = await api.patch(
        "personalized-offer", offer, [{"op": "remove", "path": "/representations/0"}]
    )
    assert response.status_code == 200, response.text
    assert (await api.delete("placement", placement)).status_code == 200


async def test_self_contained_graph_deletes_in_dependency_order(api):
    ids = await build_graph(api)
    order = [
        "decision",
        "collection",
        "personalized-offer",
        "fallback-offer",
        "tag",
        "decision-rule",
        "ranking-formula",
        "ranking-strategy",
        "placement",
    ]
    for kind in order:
        response = await api.delete(kind, ids[kind])
        assert response.status_code == 200, (kind, response.text)


async def test_tag_names_unique_within_a_sandbox(client, tenant):
    prod = Api(client, tenant)
    dev = Api(client, tenant.in_sandbox("dev"))
    first = await prod.create("tag", name="Black Friday")
    response = await prod.post("tag", body("tag", name="Black Friday"))
    assert pointers(problem(response, 422)) == ["/name"]
    assert await prod.ids("tag") == [first]

    # Renaming another tag to the taken name is refused too; renaming itself is fine.
    second = await prod.create("tag", name="Cyber Monday")
    ops = [{"op": "replace", "path": "/name", "value": "Black Friday"}]
    assert pointers(problem(await prod.patch("tag", second, ops), 422)) == ["/name"]
    assert (await prod.read("tag", second))["name"] == "Cyber Monday"
    same = await prod.put("tag", first, {"name": "Black Friday", "description": "x"})
    assert same.status_code == 200, same.text

    # The same name in another sandbox is fine.
    await dev.create("tag", name="Black Friday")

    # Once the first is deleted, the name is free again.
    assert (await prod.delete("tag", first)).status_code == 200
    await prod.create("tag", name="Black Friday")
