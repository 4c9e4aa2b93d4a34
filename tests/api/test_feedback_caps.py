"""Caps by event kind (issue 12, point 1): display, click and custom events sent to the Edge
endpoints feed the impression, click and custom caps that decisions read, at once, counted
once per event, on SQLite and PostgreSQL, with the counters in the database and in Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from typing import Any

import pytest
from decisioning_catalog import Catalog, criterion

from offerbase.store.counters import RedisCounterStore, SqlCounterStore

REDIS_BASE = os.environ.get("OFFERBASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[
    0
]
REDIS_URL = f"{REDIS_BASE}/11"  # a database of its own; each test deletes its prefix's keys
DATASTREAMS = "/data/core/edge/datastreams"
PURCHASE = "commerce.purchases"


@pytest.fixture(params=["sql-counters", "redis-counters"])
async def app_options(request: pytest.FixtureRequest) -> Any:
    """The counters in the database, or in Redis under a prefix of this test's own."""
    options: dict[str, Any] = {"snapshot_poll_seconds": 0}
    if request.param == "sql-counters":
        yield options
        return
    from redis.asyncio import Redis

    prefix = f"offerbase-test-{uuid.uuid4().hex[:12]}:"
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Redis does not answer at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    yield {**options, "redis_url": REDIS_URL, "redis_prefix": prefix}
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def counters(services: Any, app_options: dict[str, Any]) -> Any:
    expected = RedisCounterStore if "redis_url" in app_options else SqlCounterStore
    assert isinstance(services.counters, expected)
    return services.counters


def scope(activity: str, placement: str) -> str:
    raw = json.dumps({"activityId": activity, "placementId": placement}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def cap(limit: int, events: list[str], **fields: Any) -> dict[str, Any]:
    return {"limit": limit, "scope": "global", "entity": "offer", "events": events, **fields}


class Edge:
    """A datastream of the tenant, and the Server API calls of one test."""

    def __init__(self, client: Any, tenant: Any, catalog: Catalog) -> None:
        self.client = client
        self.tenant = tenant
        self.catalog = catalog
        self.datastream = ""

    async def setup(self, *caps: dict[str, Any]) -> None:
        """Offer `capped` (priority 9, these caps) above `plain`, in placements hero and side."""
        await self.catalog.placement("hero")
        await self.catalog.placement("side")
        await self.catalog.offer(
            "capped", ["hero", "side"], priority=9, frequencyCappingConstraints=list(caps)
        )
        await self.catalog.offer("plain", ["hero", "side"], priority=1)
        await self.catalog.fallback("fb", ["hero", "side"])
        await self.catalog.collection("all", ["capped", "plain"])
        await self.catalog.decision("dec", [criterion("all")], fallback="fb")
        response = await self.client.post(DATASTREAMS, json={}, headers=self.tenant.headers)
        assert response.status_code == 201, response.text
        self.datastream = response.json()["id"]

    @staticmethod
    def identity(visitor: str) -> dict[str, Any]:
        return {"FPID": [{"id": visitor, "primary": True}]}

    async def offer(self, visitor: str = "v1", placement: str = "hero") -> str:
        """The offer a decision proposes for the visitor in the placement."""
        body = {
            "event": {"xdm": {"identityMap": self.identity(visitor), "eventType": "pageView"}},
            "query": {"personalization": {"decisionScopes": [scope("dec", placement)]}},
        }
        response = await self.client.post(
            f"/ee/v2/interact?dataStreamId={self.datastream}", json=body
        )
        assert response.status_code == 200, response.text
        (handle,) = [
            h for h in response.json()["handle"] if h["type"] == "personalization:decisions"
        ]
        (proposition,) = handle["payload"]
        (item,) = proposition["items"]
        return str(item["id"])

    async def feedback(
        self,
        kind: str,
        *,
        visitor: str = "v1",
        offer: str = "capped",
        placement: str = "hero",
        event_id: str | None = None,
        event_type: str | None = None,
        dry_run: bool = False,
        path: str = "/ee/v2/collect",
    ) -> None:
        """A display / interact / custom event on a proposition nobody decided (an unknown
        proposition id: counted by the offer id it carries)."""
        xdm: dict[str, Any] = {
            "identityMap": self.identity(visitor),
            "eventType": event_type or f"decisioning.proposition{kind.capitalize()}",
            "timestamp": "2020-01-01T00:00:00.000Z",  # the client's clock: not the bucket's
            "_experience": {
                "decisioning": {
                    "propositions": [
                        {
                            "id": "proposition-from-elsewhere",
                            "scope": scope("dec", placement),
                            "items": [{"id": offer}],
                        }
                    ],
                    "propositionEventType": {kind: 1} if kind != "custom" else {"display": 0},
                }
            },
        }
        if event_id is not None:
            xdm["_id"] = event_id
        event: dict[str, Any] = {"xdm": xdm}
        if dry_run:
            event["data"] = {"__adobe": {"ajo": {"dryRun": True}}}
        response = await self.client.post(
            f"{path}?dataStreamId={self.datastream}", json={"event": event}
        )
        assert response.status_code in (200, 204), response.text


@pytest.fixture
async def edge(client: Any, tenant: Any) -> Edge:
    return Edge(client, tenant, Catalog(client, tenant))


async def _sandbox_pk(services: Any, tenant: Any) -> int:
    from offerbase.store import tenants

    async with services.db.read() as conn:
        sandbox = await tenants.get_sandbox(conn, tenant.org, tenant.sandbox)
    assert sandbox is not None
    return int(sandbox.pk)


async def _value(services: Any, tenant: Any, key: str) -> int:
    pk = await _sandbox_pk(services, tenant)
    return (await services.counters.get_many(pk, [key])).get(key, 0)


GLOBAL_KEY = "cap|capped|fc0|global|-|offer|-|all"


async def test_an_impression_cap_stops_the_offer_exactly_after_the_second_display(
    edge, counters, services, tenant
):
    await edge.setup(cap(2, ["impression"]))
    assert await edge.offer() == "capped"
    await edge.feedback("display", event_id="d1")
    await edge.feedback("display", event_id="d1")  # resent: the same xdm._id
    await edge.feedback("interact", event_id="c1")  # a click is no impression
    await edge.feedback("display", event_id="dry", dry_run=True)  # a test event counts nothing
    assert await _value(services, tenant, GLOBAL_KEY) == 1
    assert await edge.offer() == "capped"  # proposing consumes nothing of an impression cap
    assert await edge.offer() == "capped"
    await edge.feedback("display", path="/ee/v2/interact")  # no _id: its bytes name it
    await edge.feedback("display", path="/ee/v2/interact")  # byte-identical: the same event
    assert await _value(services, tenant, GLOBAL_KEY) == 2
    assert await edge.offer() == "plain"
    assert await edge.offer(visitor="v2", placement="side") == "plain"  # global, every placement


async def test_a_click_cap_stops_the_offer_exactly_after_the_second_click(
    edge, counters, services, tenant
):
    await edge.setup(cap(2, ["click"]))
    await edge.feedback("display", event_id="d1")
    await edge.feedback("display", event_id="d2")
    await edge.feedback("interact", event_id="c1", path="/ee/v1/collect")
    await edge.feedback("interact", event_id="c1")
    assert await edge.offer() == "capped"
    await edge.feedback("interact", event_id="c2", path="/ee/v2/interact")
    assert await _value(services, tenant, GLOBAL_KEY) == 2
    assert await edge.offer() == "plain"


async def test_per_profile_impression_caps_count_each_visitor_apart(edge, counters):
    await edge.setup(cap(2, ["impression"], scope="profile"))
    await edge.feedback("display", visitor="alice", event_id="a1")
    await edge.feedback("display", visitor="alice", event_id="a2")
    await edge.feedback("display", visitor="bob", event_id="b1")
    assert await edge.offer(visitor="alice") == "plain"
    assert await edge.offer(visitor="bob") == "capped"
    await edge.feedback("display", visitor="bob", event_id="b2")
    assert await edge.offer(visitor="bob") == "plain"
    assert await edge.offer(visitor="carol") == "capped"


async def test_a_per_placement_click_cap_counts_in_its_placement(edge, counters):
    await edge.setup(cap(1, ["click"], entity="placement"))
    await edge.feedback("interact", placement="side", event_id="c1")
    assert await edge.offer(placement="side") == "plain"
    assert await edge.offer(placement="hero") == "capped"


async def test_a_custom_cap_counts_only_the_events_its_query_selects(
    edge, counters, services, tenant
):
    await edge.setup(cap(2, ["custom"], customQuery=f'xEvent.eventType = "{PURCHASE}"'))
    await edge.feedback("display", event_id="d1")
    await edge.feedback("interact", event_id="c1")
    await edge.feedback("custom", event_type="commerce.productViews", event_id="v1")
    await edge.feedback("custom", event_type=PURCHASE, event_id="p1")
    await edge.feedback("custom", event_type=PURCHASE, event_id="p1")  # resent
    assert await _value(services, tenant, GLOBAL_KEY) == 1
    assert await edge.offer() == "capped"
    await edge.feedback("display", event_type=PURCHASE, event_id="p2")  # any type may match
    assert await edge.offer() == "plain"
    assert await _value(services, tenant, GLOBAL_KEY) == 2


async def test_counted_events_are_stored_once_and_the_others_too(edge, counters, services, tenant):
    await edge.setup(cap(5, ["impression"]))
    await edge.feedback("display", event_id="d1")
    await edge.feedback("display", event_id="d1")
    await edge.feedback("interact", event_id="c1")  # counts nothing: the queued writer's
    await edge.feedback("interact", event_id="c1")
    await edge.feedback("display", offer="plain", event_id="d2")  # an offer without caps
    await services.interactions.flush()
    listed = await edge.client.get("/data/core/ods/interaction-events", headers=tenant.headers)
    stored = sorted((e["eventId"], e["type"]) for e in listed.json()["results"])
    assert stored == [("c1", "interact"), ("d1", "display"), ("d2", "display")]
    assert await _value(services, tenant, GLOBAL_KEY) == 1
    # Counted at once or queued, every stored display is in the reports, once (on the day of
    # the event's own timestamp, which this module's events set to 2020-01-01).
    report = await edge.client.get(
        "/data/core/ods/reports",
        params={"groupBy": "offer", "from": "2020-01-01", "to": "2020-01-01"},
        headers=tenant.headers,
    )
    assert report.status_code == 200, report.text
    displays = {row["offerId"]: row["displays"] for row in report.json()["results"]}
    assert displays.get("capped") == 1
    assert displays.get("plain") == 1


CAP = 3
DISTINCT = 24


async def test_concurrent_displays_and_decisions_never_count_twice_nor_serve_past_the_cap(
    edge, counters, services, tenant
):
    """What docs/decisioning.md promises under concurrency: the counter is exactly the number of
    distinct display events (each sent twice, all at once), and a decision that starts after the
    N-th display was answered never proposes the offer."""
    await edge.setup(cap(CAP, ["impression"]))
    acknowledged = 0
    proposals: list[tuple[int, str]] = []  # (displays answered before the decision began, offer)

    async def display(index: int) -> None:
        nonlocal acknowledged
        await edge.feedback("display", event_id=f"d{index}", visitor=f"v{index}")
        acknowledged += 1

    async def decision(index: int) -> None:
        seen = acknowledged
        proposals.append((seen, await edge.offer(visitor=f"w{index}")))

    work = [display(i % DISTINCT) for i in range(2 * DISTINCT)]
    work += [decision(i) for i in range(2 * DISTINCT)]
    order = list(range(len(work)))
    order = order[::2] + order[1::2]  # displays and decisions interleaved
    await asyncio.gather(*(work[i] for i in order))
    assert await _value(services, tenant, GLOBAL_KEY) == DISTINCT
    # An acknowledged display is one of at most 2 sends of its event: CAP distinct events have
    # been counted once 2 * CAP - 1 sends were answered.
    late = [offer for seen, offer in proposals if seen >= 2 * CAP - 1]
    assert "capped" not in late
    assert [await edge.offer(visitor=f"x{i}") for i in range(5)] == ["plain"] * 5
