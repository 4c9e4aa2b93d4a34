"""Decisions ranked by an AI ranking strategy, through the Decisioning API and Edge's shared
path (api/decisioning.decide_and_record): xdm:score, the trace, `offerbase:ranking` in the
decision event, the evidence from `Services.ranking_stats`, and the 409 on deleting a strategy
in use. SQLite and PostgreSQL (tests/conftest.py)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import pytest
from decisioning_catalog import Catalog, decision_request

import builders
from offerbase.engine.bandit import ArmStats, StrategyStats

ODS = "/data/core/ods/decisions"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def app_options():
    return {"clock": lambda: NOW, "rng": random.Random(7), "snapshot_poll_seconds": 0}


async def _catalog(client, tenant, holdout: int = 0) -> None:
    catalog = Catalog(client, tenant)
    await catalog.placement("web")
    for oid, priority in (("best", 0), ("poor", 50), ("new", 10)):
        await catalog.offer(oid, ["web"], priority)
    await catalog.fallback("fb", ["web"])
    await catalog.collection("all", ["best", "poor", "new"])
    strategy = builders.strategy("ctr", holdout=holdout)
    await catalog.send("ranking-strategies", strategy)
    criterion = builders.criterion("all", strategy="ctr")
    await catalog.decision("dec", [criterion], fallback="fb", status="live")


class _GivenEvidence:
    """A Services.ranking_stats (api/ranking_stats.py's seam) holding the evidence a test
    gives, in place of the learner's reader: these tests are about the engine's use of it
    (tests/api/test_ai_ranking_learning.py learns it from feedback)."""

    def __init__(self, by_sandbox: dict[int, dict[str, StrategyStats]]) -> None:
        self.by_sandbox = by_sandbox

    async def get(self, sandbox) -> dict[str, StrategyStats]:
        return self.by_sandbox.get(sandbox.pk, {})


async def _evidence(services, tenant, **arms: tuple[int, int]) -> None:
    sandbox = await services.sandboxes.get(tenant.org, tenant.sandbox)
    offers = {oid: ArmStats(t, s) for oid, (t, s) in arms.items()}
    given = services.ranking_stats
    if not isinstance(given, _GivenEvidence):
        given = _GivenEvidence({})
        object.__setattr__(services, "ranking_stats", given)  # Services is frozen: a test's swap
    given.by_sandbox[sandbox.pk] = {"ctr": StrategyStats(offers, {})}


async def _decide(client, tenant, **params: str) -> dict:
    response = await client.post(
        ODS, json=decision_request([("dec", "web")]), headers=tenant.headers, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_strategy_decision_answers_200_with_a_score(client, tenant, services):
    await _catalog(client, tenant)
    await _evidence(services, tenant, best=(1000, 300), poor=(1000, 5), new=(1000, 10))
    served = Counter()
    for _ in range(30):
        body = await _decide(client, tenant)
        [option] = body["xdm:propositions"][0]["xdm:options"]
        assert 0.0 <= option["xdm:score"] <= 1.0
        served[option["xdm:id"]] += 1
    # "poor" has the highest priority; the evidence says "best".
    assert served["best"] == 30


async def test_without_evidence_new_offers_are_explored(client, tenant):
    await _catalog(client, tenant)
    served = Counter()
    for _ in range(60):
        body = await _decide(client, tenant)
        served[body["xdm:propositions"][0]["xdm:options"][0]["xdm:id"]] += 1
    assert set(served) == {"best", "poor", "new"}


async def test_the_trace_and_the_decision_event_say_how_it_was_ranked(client, tenant, services):
    await _catalog(client, tenant, holdout=50)
    await _evidence(services, tenant, best=(10, 4))
    arms = Counter()
    for _ in range(40):
        body = await _decide(client, tenant, trace="true")
        trace = body["offerbase:trace"]
        [arm] = [e for e in trace if e["event"] == "ranking_strategy"]
        arms[arm["arm"]] += 1
        sampled = {e["offer"]: e for e in trace if e["event"] == "sampled"}
        option = body["xdm:propositions"][0]["xdm:options"][0]
        if arm["arm"] == "model":
            assert set(sampled) == {"best", "poor", "new"}
            assert (sampled["best"]["alpha"], sampled["best"]["beta"]) == (5.0, 7.0)
            assert option["xdm:score"] == sampled[option["xdm:id"]]["score"]
        else:
            assert sampled == {}
            assert "xdm:score" not in option
    assert arms["model"]
    assert arms["holdout"]
    await services.events.flush()
    listed = await client.get("/data/core/ods/decision-events?limit=100", headers=tenant.headers)
    recorded = Counter()
    for event in listed.json()["results"]:
        [proposition] = event["xdm:propositions"]
        ranking = proposition["offerbase:ranking"]
        assert ranking["strategyId"] == "ctr"
        assert ranking["contextKey"] == ""
        recorded[ranking["arm"]] += 1
        [selection] = proposition["xdm:selections"]
        assert ("xdm:score" in selection) == (ranking["arm"] == "model")
    assert recorded == arms


async def test_evidence_is_per_sandbox(client, tenant, services):
    await _catalog(client, tenant)
    dev = tenant.in_sandbox("dev")
    await _catalog(client, dev)
    await _evidence(services, tenant, best=(1000, 500), poor=(1000, 1), new=(1000, 1))
    await _evidence(services, dev, best=(1000, 1), poor=(1000, 500), new=(1000, 1))
    for _ in range(10):
        prod = await _decide(client, tenant)
        other = await _decide(client, dev)
        assert prod["xdm:propositions"][0]["xdm:options"][0]["xdm:id"] == "best"
        assert other["xdm:propositions"][0]["xdm:options"][0]["xdm:id"] == "poor"


async def test_deleting_a_strategy_a_decision_uses_is_409(client, tenant):
    await _catalog(client, tenant)
    url = "/data/core/dps/ranking-strategies/ctr"
    response = await client.delete(url, headers=tenant.headers)
    assert response.status_code == 409, response.text
    assert response.json()["referrers"][0]["id"] == "dec"
    assert (await client.get(url, headers=tenant.headers)).status_code == 200
    await _decide(client, tenant)  # still decides
