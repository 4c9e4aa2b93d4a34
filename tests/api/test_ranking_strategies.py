"""Ranking strategies (`/data/core/dps/ranking-strategies`, Offerbase's own collection): the field
rules, the sandbox guardrail and the reference from a decision. The generic Offer Library
behaviour (create, lookup, list, PATCH, PUT, DELETE, etags, tenancy) is covered for every kind,
this one included, by test_library_crud.py, test_library_isolation.py and
test_library_references.py."""

from __future__ import annotations

import pytest
from factories import Api, body, criterion, pointers, problem


@pytest.fixture
def api(client, tenant) -> Api:
    return Api(client, tenant)


PERSONALIZED = {
    "type": "personalized-optimization",
    "optimizationGoal": {"eventType": "addToCart"},
    "holdoutPercentage": 0,
    "features": {
        "audiences": ["gold"],
        "profilePaths": ["/person/gender"],
        "contextPaths": ["/_xdm.context.device;version=1/type"],
    },
}


async def test_a_personalized_strategy_is_stored_and_read_back_as_sent(api):
    strategy = await api.create("ranking-strategy", **PERSONALIZED)
    read = await api.read("ranking-strategy", strategy)
    for key, value in PERSONALIZED.items():
        assert read[key] == value


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"type": "bandit"}, "/type"),
        ({"type": None}, "/type"),
        ({"holdoutPercentage": 51}, "/holdoutPercentage"),
        ({"holdoutPercentage": -1}, "/holdoutPercentage"),
        ({"holdoutPercentage": 10.5}, "/holdoutPercentage"),
        ({"optimizationGoal": {"eventType": "display"}}, "/optimizationGoal/eventType"),
        ({"optimizationGoal": {"eventType": "add to cart"}}, "/optimizationGoal/eventType"),
        ({"optimizationGoal": {"eventType": "x" * 65}}, "/optimizationGoal/eventType"),
        ({"optimizationGoal": {}}, "/optimizationGoal/eventType"),
        ({"optimizationGoal": {"metric": "revenue"}}, "/optimizationGoal/metric"),
        # auto-optimization is not personalized: features would be silently unused
        ({"features": {"audiences": ["gold"]}}, "/features"),
        ({"type": "personalized-optimization"}, "/features"),
        ({"type": "personalized-optimization", "features": {"audiences": []}}, "/features"),
        (
            {"type": "personalized-optimization", "features": {"audiences": ["a"] * 51}},
            "/features/audiences",
        ),
        (
            {
                "type": "personalized-optimization",
                "features": {"profilePaths": [f"/p{i}" for i in range(11)]},
            },
            "/features/profilePaths",
        ),
        (
            {"type": "personalized-optimization", "features": {"profilePaths": ["person.gender"]}},
            "/features/profilePaths/0",
        ),
        (
            {"type": "personalized-optimization", "features": {"contextPaths": ["/" + "a" * 256]}},
            "/features/contextPaths/0",
        ),
        (
            {"type": "personalized-optimization", "features": {"segments": ["a"]}},
            "/features/segments",
        ),
    ],
)
async def test_invalid_fields_are_422_naming_the_field_and_write_nothing(api, fields, pointer):
    payload = problem(await api.post("ranking-strategy", body("ranking-strategy", **fields)), 422)
    assert pointer in pointers(payload)
    assert await api.ids("ranking-strategy") == []


async def test_a_patch_that_breaks_a_rule_is_422_and_changes_nothing(api):
    strategy = await api.create("ranking-strategy", **PERSONALIZED)
    before = await api.read("ranking-strategy", strategy)
    ops = [{"op": "replace", "path": "/type", "value": "auto-optimization"}]
    assert pointers(problem(await api.patch("ranking-strategy", strategy, ops), 422)) == [
        "/features"
    ]
    ops.append({"op": "remove", "path": "/features"})
    response = await api.patch("ranking-strategy", strategy, ops)
    assert response.status_code == 200, response.text
    after = await api.read("ranking-strategy", strategy)
    assert after["type"] == "auto-optimization"
    assert "features" not in after
    assert after["etag"] == before["etag"] + 1


async def test_a_sandbox_holds_at_most_five_strategies(api):
    for _ in range(5):
        await api.create("ranking-strategy")
    payload = problem(await api.post("ranking-strategy", body("ranking-strategy")), 422)
    assert "at most 5" in payload["detail"]
    assert len(await api.ids("ranking-strategy")) == 5


async def test_a_strategy_a_decision_uses_cannot_be_deleted(api):
    strategy = await api.create("ranking-strategy")
    placement = await api.create("placement")
    collection = await api.create("collection")
    order = {"orderEvaluationType": "rankingStrategy", "rankingStrategy": strategy}
    decision = await api.create(
        "decision", criteria=[criterion([placement], collection, rank={"order": order})]
    )
    payload = problem(await api.delete("ranking-strategy", strategy), 409)
    assert payload["referrers"] == [
        {"id": decision, "kind": "decision", "pointer": "/criteria/0/rank/order/rankingStrategy"}
    ]
    assert (await api.read("ranking-strategy", strategy))["id"] == strategy
    assert (await api.delete("decision", decision)).status_code == 200
    assert (await api.delete("ranking-strategy", strategy)).status_code == 200
