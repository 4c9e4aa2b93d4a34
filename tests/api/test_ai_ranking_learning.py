"""AI ranking's learning side (docs/ai-ranking.md) and the ranking-strategy report
(docs/reports.md), on SQLite and PostgreSQL, through the real entry points: strategies and
decisions through the Offer Library API, decisions and feedback through the Edge endpoints,
an injected clock and a seeded RNG. The learner runs when the test says so
(`services.learner.run_once()`: the same pass the server's task runs every half second), and
each worker's reader re-reads on every decision (`ranking_refresh_seconds=0`)."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from decisioning_catalog import Catalog, criterion, decision_request
from test_edge import datastream
from test_reports import Visitor

from offerbase.store import ranking as store

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REPORT = "/data/core/ods/reports/ranking-strategies"
STRATEGIES = "/data/core/dps/ranking-strategies"


@pytest.fixture
def now():
    return {"now": START}


@pytest.fixture
def app_options(now):
    return {
        "clock": lambda: now["now"],
        "rng": random.Random(11),
        "snapshot_poll_seconds": 0,
        "ranking_refresh_seconds": 0,
    }


@pytest.fixture
async def catalog(client, tenant):
    return Catalog(client, tenant)


async def strategy(client, tenant, strategy_id="best", **fields):
    body = {"name": f"Strategy {strategy_id}", "type": "auto-optimization", **fields}
    response = await client.post(f"{STRATEGIES}/{strategy_id}", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return strategy_id


async def ranked_decision(catalog, client, tenant, offers, *, holdout=10, **fields):
    """Placement hero, `offers` of equal priority, decision `dec` ranked by strategy `best`."""
    await catalog.placement("hero")
    for offer in offers:
        await catalog.offer(offer, ["hero"], priority=1)
    await catalog.fallback("fb", ["hero"])
    await catalog.collection("all", offers)
    await strategy(client, tenant, holdoutPercentage=holdout, **fields)
    ranked = criterion(
        "all", rank={"order": {"orderEvaluationType": "rankingStrategy", "rankingStrategy": "best"}}
    )
    await catalog.decision("dec", [ranked], fallback="fb")
    return Visitor(client, await datastream(client, tenant))


async def written(services):
    """Flush the event writers (what their background tasks do every 0.2 s)."""
    await services.events.flush()
    await services.interactions.flush()


async def report(client, tenant, strategy_id="best"):
    response = await client.get(f"{REPORT}/{strategy_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def arms_of(client, tenant):
    """Proposition id -> the arm its decision event records (GET decision-events)."""
    found, start = {}, None
    while True:
        params = {"limit": 100, **({"start": start} if start else {})}
        response = await client.get(
            "/data/core/ods/decision-events", params=params, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        for event in body["results"]:
            (proposition,) = event["xdm:propositions"]
            found[event["xdm:propositionId"]] = proposition["offerbase:ranking"]["arm"]
        nxt = body.get("_links", {}).get("next")
        if not nxt:
            return found
        start = nxt["href"].split("start=")[1].split("&")[0]


async def test_the_strategy_converges_on_a_clearly_best_offer(
    client, tenant, catalog, services, now
):
    truth = {"gold": 0.5, "silver": 0.05, "bronze": 0.05}
    visitor = await ranked_decision(catalog, client, tenant, list(truth))
    clicks = random.Random(5)
    served = []
    for _round in range(12):
        shown = [await visitor.fetch() for _ in range(20)]
        await written(services)
        for proposition in shown:
            await visitor.display(proposition)
            if clicks.random() < truth[proposition["items"][0]["id"]]:
                await visitor.click(proposition, event_id=f"click-{proposition['id']}")
            served.append(proposition["items"][0]["id"])
        await written(services)
        await services.learner.run_once()
        now["now"] += timedelta(seconds=1)
    early, late = served[:40], served[-60:]
    assert early.count("gold") < 30  # explored at first (1/3 expected, holdout included)
    assert late.count("gold") >= 48  # then >= 80% gold: 90% model traffic, nearly all on gold
    body = await report(client, tenant)
    offers = {o["offerId"]: o for o in body["offers"]}
    assert offers["gold"]["estimate"] > 0.35
    assert max(offers["silver"]["estimate"], offers["bronze"]["estimate"]) < 0.2
    assert offers["gold"]["modelTrafficShare"] > 0.6
    assert sum(arm["displays"] for arm in body["arms"].values()) == len(served)


# (arm, offer) -> (displays, clicks) of the hand-computed case below.
PLAN = {
    ("model", "gold"): (15, 3),
    ("model", "silver"): (5, 1),
    ("holdout", "gold"): (5, 1),
    ("holdout", "silver"): (5, 0),
}


async def test_the_report_of_a_hand_computed_case(client, tenant, catalog, services):
    """Decisions until each (arm, offer) of PLAN has enough; then exactly PLAN's displays and
    clicks (the other decisions are never displayed). Model 20 displays 4 clicks (CTR 0.2),
    holdout 10 displays 1 click (0.1): lift +100%, 95% interval exp(ln 2 ± 1.96 sqrt(0.8/4 +
    0.9/1)) - 1 = [-0.7440, 14.62], z = 0.1 / sqrt(1/6 * 5/6 * (1/20 + 1/10)) = 0.6928,
    p = 0.4884. gold: 20 displays 4 clicks, estimate 5/22, 15 of 20 model displays."""
    visitor = await ranked_decision(catalog, client, tenant, ["gold", "silver"], holdout=50)
    decided: dict[tuple[str, str], list[dict]] = {key: [] for key in PLAN}
    pending = []
    for _ in range(200):
        pending.append(await visitor.fetch())
        if len(pending) % 20 == 0:
            await written(services)
            arms = await arms_of(client, tenant)
            for proposition in pending:
                key = (arms[proposition["id"]], proposition["items"][0]["id"])
                decided[key].append(proposition)
            pending = []
            if all(len(decided[key]) >= n for key, (n, _) in PLAN.items()):
                break
    for key, (displays, clicks) in PLAN.items():
        for index, proposition in enumerate(decided[key][:displays]):
            await visitor.display(proposition)
            if index < clicks:
                await visitor.click(proposition, event_id=f"click-{proposition['id']}")
    await written(services)
    await services.learner.run_once()
    body = await report(client, tenant)
    assert body["arms"] == {
        "model": {"displays": 20, "clicks": 4, "ctr": 0.2},
        "holdout": {"displays": 10, "clicks": 1, "ctr": 0.1},
    }
    lift = body["lift"]
    assert lift["test"] == "two-proportion z-test"
    assert lift["relative"] == pytest.approx(1.0)
    assert lift["confidenceInterval"]["level"] == 0.95
    assert lift["confidenceInterval"]["lower"] == pytest.approx(-0.74398, abs=1e-4)
    assert lift["confidenceInterval"]["upper"] == pytest.approx(14.6235, abs=1e-3)
    assert lift["pValue"] == pytest.approx(0.48842, abs=1e-4)
    assert body["offers"] == [
        {
            "offerId": "gold",
            "estimate": pytest.approx(5 / 22),
            "displays": 20,
            "clicks": 4,
            "ctr": 0.2,
            "modelDisplays": 15,
            "modelTrafficShare": 0.75,
        },
        {
            "offerId": "silver",
            "estimate": pytest.approx(2 / 12),
            "displays": 10,
            "clicks": 1,
            "ctr": 0.1,
            "modelDisplays": 5,
            "modelTrafficShare": 0.25,
        },
    ]
    assert (body["strategyId"], body["type"], body["goal"]) == (
        "best",
        "auto-optimization",
        "clicks",
    )


async def test_a_display_before_its_decision_event_counts_once(
    client, tenant, catalog, services, now
):
    visitor = await ranked_decision(catalog, client, tenant, ["gold"])
    proposition = await visitor.fetch()  # its decision event is still queued in the writer
    await visitor.display(proposition)
    await services.interactions.flush()
    learned = await services.learner.run_once()
    assert (learned.counted, learned.waiting) == (0, 1)
    await services.events.flush()  # the decision event arrives
    assert (await services.learner.run_once()).counted == 0  # not due again yet (0.5 s)
    now["now"] += timedelta(seconds=1)
    assert (await services.learner.run_once()).counted == 1
    now["now"] += timedelta(minutes=20)
    assert (await services.learner.run_once()).counted == 0
    body = await report(client, tenant)
    assert sum(arm["displays"] for arm in body["arms"].values()) == 1
    assert await store.pending(services.db, (await sandbox_of(services, tenant)).pk) == 0


async def sandbox_of(services, tenant):
    return await services.sandboxes.get(tenant.org, tenant.sandbox)


async def test_feedback_whose_decision_never_comes_is_dropped_after_ten_minutes(
    client, tenant, catalog, services, now
):
    visitor = await ranked_decision(catalog, client, tenant, ["gold"])
    dry = await client.post(
        "/data/core/ods/decisions",
        json=decision_request([("dec", "hero")], **{"xdm:dryRun": True}),
        headers={**tenant.headers, "Accept": "application/json"},
    )
    assert dry.status_code == 200, dry.text
    proposition = {
        "id": dry.json()["xdm:propositionId"],
        "scope": None,
        "items": [{"id": "gold"}],
    }
    await visitor.display(proposition)
    await written(services)
    pk = (await sandbox_of(services, tenant)).pk
    # The learner runs over every sandbox of the (shared) test database: what it reports may
    # include other tests' leftovers, so this sandbox's queue and report are what is checked.
    for _ in range(12):  # retried with backoff meanwhile, never counted
        await services.learner.run_once()
        assert await store.pending(services.db, pk) == 1
        now["now"] += timedelta(seconds=40)
    assert (await report(client, tenant))["arms"]["model"]["displays"] == 0
    now["now"] += timedelta(minutes=3)
    assert (await services.learner.run_once()).expired >= 1
    assert await store.pending(services.db, pk) == 0
    assert (await report(client, tenant))["arms"]["model"]["displays"] == 0


async def test_duplicates_count_once(client, tenant, catalog, services):
    visitor = await ranked_decision(catalog, client, tenant, ["gold"], holdout=0)
    proposition = await visitor.fetch()
    await written(services)
    for _ in range(2):  # a resent beacon: the same event, stored and learned once
        await visitor.display(proposition)
        await visitor.click(proposition, event_id="the-click")
    await written(services)
    await services.learner.run_once()
    await visitor.click(proposition, event_id="the-click")  # once more, after learning
    await written(services)
    await services.learner.run_once()
    body = await report(client, tenant)
    assert body["arms"]["model"] == {"displays": 1, "clicks": 1, "ctr": 1.0}


async def test_a_custom_goal_counts_its_event_type_not_clicks(client, tenant, catalog, services):
    visitor = await ranked_decision(
        catalog, client, tenant, ["gold"], holdout=0, optimizationGoal={"eventType": "signup"}
    )
    proposition = await visitor.fetch()
    await written(services)
    await visitor.display(proposition)
    await visitor.click(proposition, event_id="a-click")
    await visitor.send(
        {"display": 0, "interact": 0},
        proposition,
        at="2026-11-24T12:00:03.000Z",
        event_type="signup",
    )
    await written(services)
    await services.learner.run_once()
    body = await report(client, tenant)
    assert body["goal"] == "signup"
    assert body["arms"]["model"] == {"displays": 1, "clicks": 1, "ctr": 1.0}
    (offer,) = body["offers"]
    assert (offer["displays"], offer["clicks"]) == (1, 1)


async def test_each_worker_reads_the_learned_evidence(client, tenant, catalog, services):
    """With the reader re-reading on every decision, one learned click shows in the next
    decision's trace: the engine's posterior of the offer is Beta(1 + 1, 1 + 1 - 1)."""
    visitor = await ranked_decision(catalog, client, tenant, ["gold"], holdout=0)
    proposition = await visitor.fetch()
    await written(services)
    await visitor.display(proposition)
    await visitor.click(proposition, event_id="the-click")
    await written(services)
    await services.learner.run_once()
    stats = await services.ranking_stats.get(await sandbox_of(services, tenant))
    assert stats["best"].offers["gold"].trials == 1
    assert stats["best"].offers["gold"].successes == 1
    assert stats["best"].contexts[""]["gold"].trials == 1


async def test_an_unknown_strategy_is_404_and_another_org_cannot_read_it(
    client, tenant, catalog, other_tenant
):
    missing = await client.get(f"{REPORT}/nope", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    await strategy(client, tenant)
    empty = await report(client, tenant)
    assert empty["arms"]["model"] == {"displays": 0, "clicks": 0, "ctr": None}
    assert empty["lift"]["relative"] is None
    assert empty["lift"]["pValue"] is None
    assert empty["offers"] == []
    intruder = await other_tenant()
    assert (await client.get(f"{REPORT}/best", headers=intruder.headers)).status_code == 404
    other_sandbox = tenant.in_sandbox("dev")
    assert (await client.get(f"{REPORT}/best", headers=other_sandbox.headers)).status_code == 404
    unauthenticated = await client.get(f"{REPORT}/best")
    assert unauthenticated.status_code in (401, 403)


def test_the_lift_formulas_match_the_worked_numbers() -> None:
    """The report's figures, by hand (docs/reports.md's example): model 200 displays and 20
    clicks, holdout 100 and 5."""
    from offerbase.api.ranking_report import lift

    found = lift((200, 20), (100, 5))
    assert found["relative"] == pytest.approx(1.0)
    se = math.sqrt(0.9 / 20 + 0.95 / 5)
    assert found["confidenceInterval"]["lower"] == pytest.approx(
        math.exp(math.log(2) - 1.959964 * se) - 1, abs=1e-5
    )
    assert found["confidenceInterval"]["lower"] == pytest.approx(-0.2266, abs=1e-4)
    assert found["confidenceInterval"]["upper"] == pytest.approx(4.1721, abs=1e-3)
    assert found["pValue"] == pytest.approx(0.1396, abs=1e-4)
    assert lift((0, 0), (10, 1))["relative"] is None
    assert lift((10, 2), (10, 0))["relative"] is None  # no holdout click: no ratio
    assert lift((10, 2), (10, 0))["pValue"] is not None


async def test_two_workers_learning_at_once_count_each_event_once(
    client, tenant, catalog, services, make_app, app_options
):
    """Two servers' learners on one database, run together over the same queue: each
    display counts once (PostgreSQL: one takes the sandbox, the other skips it; SQLite: the
    write lock serialises them and the second finds the queue done)."""
    from offerbase.api.deps import services_of

    other = services_of(make_app(**app_options))
    visitor = await ranked_decision(catalog, client, tenant, ["gold", "silver"])
    shown = [await visitor.fetch() for _ in range(30)]
    await written(services)
    for proposition in shown:
        await visitor.display(proposition)
    await written(services)
    for _ in range(3):
        await asyncio.gather(services.learner.run_once(), other.learner.run_once())
    body = await report(client, tenant)
    assert sum(arm["displays"] for arm in body["arms"].values()) == 30
    assert await store.pending(services.db, (await sandbox_of(services, tenant)).pk) == 0


# -- the engine's promises, through the Edge endpoint ------------------------------------------


async def test_the_holdout_share_is_respected_within_binomial_bounds(
    client, tenant, catalog, services
):
    visitor = await ranked_decision(catalog, client, tenant, ["gold", "silver"], holdout=20)
    for _ in range(300):
        await visitor.fetch()
    await written(services)
    arms = list((await arms_of(client, tenant)).values())
    assert len(arms) == 300
    # 300 draws at 20%: mean 60, standard deviation 6.9; 4.5 of them either side (29 to 91)
    # never fails by chance in practice, and 0%, 10% or 50% fall outside.
    assert 29 <= arms.count("holdout") <= 91, arms.count("holdout")


async def test_eligibility_and_caps_still_apply_to_a_strategy(client, tenant, catalog, services):
    await catalog.placement("hero")
    await catalog.rule("nobody", 'profile.loyalty.tier = "none-such"')
    dates = {"startDate": "2020-01-01T00:00:00Z", "endDate": "2040-01-01T00:00:00Z"}
    rule = {**dates, "profileConstraintType": "eligibilityRule", "eligibilityRule": "nobody"}
    await catalog.offer("ineligible", ["hero"], priority=1, selectionConstraint=rule)
    cap = {"limit": 2, "scope": "global", "entity": "offer"}
    await catalog.offer("capped", ["hero"], priority=1, frequencyCappingConstraints=[cap])
    await catalog.offer("plain", ["hero"], priority=1)
    await catalog.fallback("fb", ["hero"])
    await catalog.collection("all", ["ineligible", "capped", "plain"])
    await strategy(client, tenant, holdoutPercentage=50)
    ranked = criterion(
        "all", rank={"order": {"orderEvaluationType": "rankingStrategy", "rankingStrategy": "best"}}
    )
    await catalog.decision("dec", [ranked], fallback="fb")
    visitor = Visitor(client, await datastream(client, tenant))
    served = [(await visitor.fetch())["items"][0]["id"] for _ in range(40)]
    assert "ineligible" not in served  # by either arm
    assert served.count("capped") == 2  # explored, then stopped at its cap
    assert served.count("plain") == 38


async def test_a_new_offer_is_explored_after_the_model_converged(
    client, tenant, catalog, services, now
):
    visitor = await ranked_decision(catalog, client, tenant, ["gold", "silver"], holdout=0)
    gold_shown = 0
    for _round in range(6):  # gold is clicked every other time, silver never
        shown = [await visitor.fetch() for _ in range(20)]
        await written(services)
        for proposition in shown:
            await visitor.display(proposition)
            if proposition["items"][0]["id"] == "gold":
                gold_shown += 1
                if gold_shown % 2:
                    await visitor.click(proposition, event_id=f"click-{proposition['id']}")
        await written(services)
        await services.learner.run_once()
        now["now"] += timedelta(seconds=1)
    before = [(await visitor.fetch())["items"][0]["id"] for _ in range(20)]
    assert before.count("gold") >= 16
    await catalog.offer("newcomer", ["hero"], priority=1)
    response = await client.patch(
        "/data/core/dps/offer-collections/all",
        json=[{"op": "add", "path": "/ids/-", "value": "newcomer"}],
        headers={**tenant.headers, "content-type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    after = [(await visitor.fetch())["items"][0]["id"] for _ in range(100)]
    # No evidence: Beta(1, 1), whose draw beats gold's posterior (about Beta(50, 50)) about half
    # the time at first; never served would mean new offers wait for a retraining.
    assert 15 <= after.count("newcomer") <= 85, after.count("newcomer")
