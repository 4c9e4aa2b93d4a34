"""Offer reports (`GET /data/core/ods/reports` and `offerbase report`) on SQLite and PostgreSQL,
fed through the real entry points: decisions through the Edge endpoints and the Decisioning
API, feedback through the Edge endpoints, days from an injected clock. The worked example of
docs/reports.md is `test_the_worked_example`'s numbers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import random
from datetime import UTC, datetime

import pytest
from decisioning_catalog import Catalog, criterion, decision_request
from test_edge import alloy_body, datastream, handles, interact, scope
from typer.testing import CliRunner

from offerbase.cli import app as cli_app

REPORTS = "/data/core/ods/reports"
DAY_1 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DAY_2 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
RANGE = {"from": "2026-11-24", "to": "2026-11-25"}


@pytest.fixture
def now():
    return {"now": DAY_1}


@pytest.fixture
def app_options(now):
    return {"clock": lambda: now["now"], "rng": random.Random(7), "snapshot_poll_seconds": 0}


@pytest.fixture
async def catalog(client, tenant):
    return Catalog(client, tenant)


class Visitor:
    """A browser: its ECID cookie comes back with every request after the first."""

    def __init__(self, client, datastream_id):
        self.client = client
        self.datastream_id = datastream_id
        self.entries = None

    async def fetch(self, activity="dec", placement="hero"):
        body = alloy_body([scope(activity, placement)], entries=self.entries)
        response = await interact(self.client, self.datastream_id, body)
        state = handles(response, "state:store")
        if state:
            self.entries = [
                {"key": state[0]["payload"][0]["key"], "value": state[0]["payload"][0]["value"]}
            ]
        (proposition,) = handles(response, "personalization:decisions")[0]["payload"]
        return proposition

    async def send(self, kinds, proposition, *, at, event_type, items=None, event_id=None):
        ids = items if items is not None else [item["id"] for item in proposition["items"]]
        xdm = {
            "eventType": event_type,
            "timestamp": at,
            "_experience": {
                "decisioning": {
                    "propositionEventType": kinds,
                    "propositions": [
                        {
                            "id": proposition["id"],
                            "scope": proposition["scope"],
                            "items": [{"id": item} for item in ids],
                        }
                    ],
                }
            },
        }
        if event_id is not None:
            xdm["_id"] = event_id
        body = {"events": [{"xdm": xdm}], "meta": {"state": {"entries": self.entries or []}}}
        await interact(self.client, self.datastream_id, body, path="/ee/v1/collect", status=204)

    async def display(self, proposition, at="2026-11-24T12:00:01.000Z"):
        await self.send(
            {"display": 1}, proposition, at=at, event_type="decisioning.propositionDisplay"
        )

    async def click(self, proposition, at="2026-11-24T12:00:02.000Z", event_id=None):
        await self.send(
            {"interact": 1},
            proposition,
            at=at,
            event_type="decisioning.propositionInteract",
            event_id=event_id,
        )


async def the_example(client, tenant, catalog, services, now):
    """The worked example of docs/reports.md: two days of one offer decision, its capped gold
    offer, a second decision that falls back, two visitors' displays, clicks and a purchase."""
    await catalog.placement("hero")
    cap = {"limit": 2, "scope": "global", "entity": "offer"}
    await catalog.offer("gold", ["hero"], priority=9, frequencyCappingConstraints=[cap])
    await catalog.offer("silver", ["hero"], priority=5)
    await catalog.fallback("fb", ["hero"])
    await catalog.collection("all", ["gold", "silver"])
    await catalog.collection("gold-only", ["gold"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")
    await catalog.decision("dec2", [criterion("gold-only")], fallback="fb")
    ds = await datastream(client, tenant)
    ann, bob = Visitor(client, ds), Visitor(client, ds)
    # Day 1: gold twice (its cap of 2 proposals), then silver; dec2 falls back.
    ann_gold = await ann.fetch()
    bob_gold = await bob.fetch()
    ann_silver = await ann.fetch()
    assert [p["items"][0]["id"] for p in (ann_gold, bob_gold, ann_silver)] == [
        "gold",
        "gold",
        "silver",
    ]
    fell_back = await client.post(
        "/data/core/ods/decisions",
        json=decision_request([("dec2", "hero")]),
        headers={**tenant.headers, "Accept": "application/json"},
    )
    assert fell_back.status_code == 200, fell_back.text
    assert fell_back.json()["xdm:propositions"][0]["xdm:fallback"]["xdm:id"] == "fb"
    await ann.display(ann_gold)
    await ann.display(ann_gold, at="2026-11-24T12:05:00.000Z")  # shown again: 2 displays, 1 unique
    await bob.display(bob_gold)
    await ann.display(ann_silver)
    await ann.click(ann_gold, event_id="ann-click-1")
    await ann.click(ann_gold, event_id="ann-click-1")  # the same event again: counted once
    await ann.send(
        {"display": 0, "interact": 0},
        ann_gold,
        at="2026-11-24T12:10:00.000Z",
        event_type="commerce.purchases",
    )
    # Feedback naming a proposition no decision made, with no scope nor items: unattributed.
    stray = {"id": "unknown-proposition", "scope": "web://shop.example/#hero", "items": []}
    await ann.display(stray)
    # Day 2: gold is still capped (no reset): silver, displayed by Ann again.
    now["now"] = DAY_2
    ann_silver_2 = await ann.fetch()
    assert ann_silver_2["items"][0]["id"] == "silver"
    await ann.display(ann_silver_2, at="2026-11-25T09:00:01.000Z")
    await services.events.flush()
    await services.interactions.flush()


async def get_report(client, tenant, status=200, headers=None, **params):
    response = await client.get(
        REPORTS, params=params, headers={**tenant.headers, **(headers or {})}
    )
    assert response.status_code == status, response.text
    return response


def metrics(**counts):
    """A result row's metrics: zeros unless given."""
    row = {
        "decisions": 0,
        "fallbacks": 0,
        "displays": 0,
        "uniqueDisplays": 0,
        "clicks": 0,
        "uniqueClicks": 0,
        "ctr": None,
        "conversions": {},
        "capHits": 0,
        "propositions": None,
        "fallbackRate": None,
    }
    row.update(counts)
    return row


async def test_the_worked_example(client, tenant, catalog, services, now):
    await the_example(client, tenant, catalog, services, now)
    by_offer_day = (await get_report(client, tenant, groupBy="offer,day", **RANGE)).json()
    assert by_offer_day["results"] == [
        {"offerId": None, "day": "2026-11-24", **metrics(displays=1, uniqueDisplays=1, ctr=0.0)},
        {"offerId": "fb", "day": "2026-11-24", **metrics(fallbacks=1)},
        {
            "offerId": "gold",
            "day": "2026-11-24",
            **metrics(
                decisions=2,
                displays=3,
                uniqueDisplays=2,
                clicks=1,
                uniqueClicks=1,
                ctr=1 / 3,
                conversions={"commerce.purchases": 1},
                capHits=2,  # Ann's second fetch of dec, and dec2
            ),
        },
        {"offerId": "gold", "day": "2026-11-25", **metrics(capHits=1)},
        {
            "offerId": "silver",
            "day": "2026-11-24",
            **metrics(decisions=1, displays=1, uniqueDisplays=1, ctr=0.0),
        },
        {
            "offerId": "silver",
            "day": "2026-11-25",
            **metrics(decisions=1, displays=1, uniqueDisplays=1, ctr=0.0),
        },
    ]
    # Over the range, Ann is one unique viewer of silver, not the 1 + 1 of the days.
    by_offer = (
        await get_report(client, tenant, groupBy="offer", uniqueTotals="true", **RANGE)
    ).json()
    silver = next(row for row in by_offer["results"] if row["offerId"] == "silver")
    assert (silver["displays"], silver["uniqueDisplays"]) == (2, 1)
    assert by_offer["totals"] == metrics(
        decisions=4,
        fallbacks=1,
        displays=6,
        uniqueDisplays=2,  # Ann and Bob
        clicks=1,
        uniqueClicks=1,
        ctr=1 / 6,
        conversions={"commerce.purchases": 1},
        capHits=3,
    )
    # Decision level: dec answered 4 propositions with options, dec2 1 with its fallback.
    by_activity = (await get_report(client, tenant, groupBy=["activity"], **RANGE)).json()
    assert by_activity["totals"]["uniqueDisplays"] is None  # not asked for: not counted
    gold_daily = (
        await get_report(
            client, tenant, groupBy="day", offerId="gold", uniqueTotals="true", **RANGE
        )
    ).json()
    assert gold_daily["totals"]["uniqueDisplays"] == 2
    hero = (
        await get_report(
            client, tenant, groupBy="offer", placementId="hero", uniqueTotals="true", **RANGE
        )
    ).json()
    assert [(r["offerId"], r["uniqueDisplays"]) for r in hero["results"]] == [
        ("fb", 0),
        ("gold", 2),
        ("silver", 1),
    ]
    assert hero["totals"]["uniqueDisplays"] == 2
    rates = {
        row["activityId"]: (row["propositions"], row["fallbackRate"])
        for row in by_activity["results"]
    }
    assert rates == {None: (0, None), "dec": (4, 0.0), "dec2": (1, 1.0)}
    assert (by_activity["totals"]["propositions"], by_activity["totals"]["fallbackRate"]) == (
        5,
        0.2,
    )


async def test_filters_and_the_default_range(client, tenant, catalog, services, now):
    await the_example(client, tenant, catalog, services, now)
    gold = (await get_report(client, tenant, groupBy="day", offerId="gold", **RANGE)).json()
    assert [(r["day"], r["decisions"], r["capHits"]) for r in gold["results"]] == [
        ("2026-11-24", 2, 2),
        ("2026-11-25", 0, 1),
    ]
    assert gold["totals"]["propositions"] is None  # a proposition is not one offer's
    only_dec2 = (await get_report(client, tenant, groupBy="offer", activityId="dec2")).json()
    assert [(r["offerId"], r["fallbacks"], r["capHits"]) for r in only_dec2["results"]] == [
        ("fb", 1, 0),
        ("gold", 0, 1),
    ]
    # No from/to: the 30 days up to the clock's today (2026-11-25).
    recent = (await get_report(client, tenant, groupBy="day")).json()
    assert [row["day"] for row in recent["results"]] == ["2026-11-24", "2026-11-25"]
    now["now"] = datetime(2027, 1, 1, tzinfo=UTC)
    assert (await get_report(client, tenant, groupBy="day")).json()["results"] == []
    none = (await get_report(client, tenant, groupBy="day", placementId="elsewhere")).json()
    assert none["results"] == []


async def test_csv(client, tenant, catalog, services, now):
    await the_example(client, tenant, catalog, services, now)
    response = await get_report(
        client, tenant, headers={"Accept": "text/csv"}, groupBy="offer", **RANGE
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["offerId"] for row in rows] == ["", "fb", "gold", "silver"]
    gold = rows[2]
    assert (gold["decisions"], gold["displays"], gold["clicks"], gold["ctr"]) == (
        "2",
        "3",
        "1",
        str(1 / 3),
    )
    assert gold["conversions:commerce.purchases"] == "1"
    assert rows[3]["conversions:commerce.purchases"] == "0"


async def test_another_tenant_sees_nothing(client, tenant, catalog, services, now, other_tenant):
    await the_example(client, tenant, catalog, services, now)
    for other in (tenant.in_sandbox("dev"), await other_tenant()):
        response = await client.get(REPORTS, params=RANGE, headers=other.headers)
        assert response.status_code == 200, response.text
        assert response.json()["results"] == []
    assert (await client.get(REPORTS, params=RANGE)).status_code in (400, 401, 403)


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"groupBy": "offer,colour"}, 400, "groupBy"),
        ({"from": "2026-13-01"}, 400, "from"),
        ({"to": "yesterday"}, 400, "to"),
        ({"from": "2026-11-25", "to": "2026-11-24"}, 422, "from"),
        ({"from": "2025-01-01", "to": "2026-11-24"}, 422, "from"),
        ({"activityId": "x" * 256}, 400, "activityId"),
    ],
)
async def test_bad_parameters_are_named(client, tenant, params, status, field):
    response = await get_report(client, tenant, status=status, **params)
    body = response.json()
    assert [error["pointer"] for error in body["errors"]] == [field], body


@pytest.fixture
def saved_environment():
    """The CLI exports --database-url to the environment (for `serve`'s workers): put the
    environment back, or later tests in this process would find this database."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


async def test_the_cli_prints_the_same_report(
    client, tenant, catalog, services, now, saved_environment
):
    await the_example(client, tenant, catalog, services, now)
    api = (await get_report(client, tenant, groupBy="offer,day", **RANGE)).json()
    base = ["report", "--org", tenant.org, "--database-url", services.db.url]
    words = [*base, "--group-by", "offer", "--group-by", "day", "--from", RANGE["from"]]
    words += ["--to", RANGE["to"]]
    runner = CliRunner()
    as_json = await asyncio.to_thread(runner.invoke, cli_app, [*words, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == api
    as_csv = await asyncio.to_thread(runner.invoke, cli_app, [*words, "--format", "csv"])
    served = await get_report(
        client, tenant, headers={"Accept": "text/csv"}, groupBy="offer,day", **RANGE
    )
    assert as_csv.stdout_bytes.decode() == served.text
    table = await asyncio.to_thread(runner.invoke, cli_app, words)
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["offerId", "day", "decisions", "fallbacks"]
    assert lines[3].split()[:5] == ["gold", "2026-11-24", "2", "0", "3"]
    bad = await asyncio.to_thread(runner.invoke, cli_app, [*base, "--from", "24/11/2026"])
    assert bad.exit_code == 1
    missing = await asyncio.to_thread(runner.invoke, cli_app, [*base, "--sandbox", "nope"])
    assert missing.exit_code == 2
