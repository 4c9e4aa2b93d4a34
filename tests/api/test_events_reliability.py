"""Decision events are not lost silently (issue 9, point 5): a bad record fails on its own and
never takes a batch of other tenants' events with it, identity entries are validated, the queue
is written at a graceful shutdown, and the durable mode commits an event before its answer."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from decisioning_catalog import Catalog, criterion, decision_request
from prometheus_client import REGISTRY

from offerbase.store import events as events_module
from offerbase.store.events import PendingEvent
from offerbase.store.tables import decision_events

ODS = "/data/core/ods/decisions"


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def one_offer(client, tenant) -> None:  # type: ignore[no-untyped-def]
    catalog = Catalog(client, tenant)
    await catalog.placement("web")
    await catalog.offer("only", ["web"])
    await catalog.collection("all", ["only"])
    await catalog.decision("dec", [criterion("all")])


async def decide(client, tenant, body, status: int = 200):  # type: ignore[no-untyped-def]
    response = await client.post(ODS, json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    return response


async def stored_events(services, tenant) -> int:  # type: ignore[no-untyped-def]
    async with services.db.read() as conn:
        sandbox = await _sandbox(conn, tenant)
        count = sa.select(sa.func.count()).where(decision_events.c.sandbox_pk == sandbox)
        return int(await conn.scalar(count) or 0)


async def _sandbox(conn, tenant) -> int:  # type: ignore[no-untyped-def]
    from offerbase.store import tenants

    found = await tenants.get_sandbox(conn, tenant.org, tenant.sandbox)
    assert found is not None
    return found.pk


LONG = "x" * 1025  # a stored profile's identity has at most 1,024 characters


@pytest.mark.parametrize(
    ("identity_map", "pointer"),
    [
        ({"Email": [{"xdm:id": LONG}]}, "/xdm:profiles/0/xdm:identityMap/Email/0/xdm:id"),
        (
            {"E/m" + "n" * 255: [{"xdm:id": "a"}]},
            "/xdm:profiles/0/xdm:identityMap/E~1m" + "n" * 255,
        ),
        ({"ECID": [{"id": "ok"}, {"id": LONG}]}, "/xdm:profiles/0/xdm:identityMap/ECID/1/xdm:id"),
    ],
    ids=["long-id", "long-namespace", "unprefixed"],
)
async def test_identity_entries_are_validated(client, tenant, identity_map, pointer) -> None:  # type: ignore[no-untyped-def]
    await one_offer(client, tenant)
    body = decision_request([("dec", "web")], profile={"xdm:identityMap": identity_map})
    response = await decide(client, tenant, body, status=400)
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]


async def test_identities_at_the_limits_are_accepted(client, tenant, services) -> None:  # type: ignore[no-untyped-def]
    await one_offer(client, tenant)
    identity_map = {"n" * 255: [{"xdm:id": "x" * 1024}]}
    body = decision_request([("dec", "web")], profile={"xdm:identityMap": identity_map})
    await decide(client, tenant, body)
    await services.events.flush()
    assert await stored_events(services, tenant) == 1


async def test_a_bad_event_is_rejected_alone(client, tenant, services) -> None:  # type: ignore[no-untyped-def]
    """An event that cannot be serialised used to fail when its batch was written, and the
    batch (other tenants' events queued beside it) was lost with it. Now it is refused when it
    is queued, counted, and the others are stored."""
    await one_offer(client, tenant)
    good = decision_request([("dec", "web")])
    rejected = metric("offerbase_decision_events_rejected_total")
    for _ in range(3):
        await decide(client, tenant, good)
    bad = PendingEvent(1, "bad", "2026-01-01T00:00:00.000Z", {"not JSON": {1, 2}})
    assert not services.events.record(bad)
    for _ in range(3):
        await decide(client, tenant, good)
    await services.events.flush()
    assert await stored_events(services, tenant) == 6
    assert metric("offerbase_decision_events_rejected_total") == rejected + 1


async def test_a_row_the_database_refuses_fails_alone(client, tenant, services) -> None:  # type: ignore[no-untyped-def]
    """An event that passes the checks at enqueue but that the database refuses (here: of a
    sandbox that no longer exists) is rejected on its own; the rest of its batch is stored."""
    await one_offer(client, tenant)
    writer = services.events
    rejected = writer.rejected
    for _ in range(2):
        await decide(client, tenant, decision_request([("dec", "web")]))
    assert writer.record(PendingEvent(2**31 - 7, "gone", "2026-01-01T00:00:00.000Z", {}))
    for _ in range(2):
        await decide(client, tenant, decision_request([("dec", "web")]))
    await writer.flush()
    assert await stored_events(services, tenant) == 4
    assert writer.rejected == rejected + 1


def test_an_event_is_checked_when_it_is_queued() -> None:
    row = events_module.event_row(PendingEvent(1, "p", "t", {"a": "\\u0000 is text"}))
    assert row[3] == '{"a":"\\\\u0000 is text"}'  # an escaped backslash, not a NUL: stored
    for bad in (
        PendingEvent(1, "p", "t", {"a": "\u0000"}),
        PendingEvent(1, "p", "t", {"a": "\\\u0000"}),
        PendingEvent(1, "p" * 65, "t", {}),
        PendingEvent(1, "p\u0000", "t", {}),
        PendingEvent(1, "p", "t", {"a": {1, 2}}),  # not JSON
    ):
        with pytest.raises(events_module.BadEvent):
            events_module.event_row(bad)


@pytest.mark.parametrize("app_options", [{}], indirect=True, ids=["own-app"])
async def test_graceful_shutdown_writes_the_queue(app, client, tenant, services) -> None:  # type: ignore[no-untyped-def]
    await one_offer(client, tenant)
    async with app.router.lifespan_context(app):
        for _ in range(5):
            await decide(client, tenant, decision_request([("dec", "web")]))
        assert await stored_events(services, tenant) == 0  # still queued
    assert await stored_events(services, tenant) == 5


@pytest.mark.parametrize("app_options", [{"events_durable": True}], indirect=True, ids=["durable"])
async def test_durable_events_are_committed_before_the_answer(client, tenant, services) -> None:  # type: ignore[no-untyped-def]
    await one_offer(client, tenant)
    for expected in range(1, 4):
        await decide(client, tenant, decision_request([("dec", "web")]))
        assert await stored_events(services, tenant) == expected
    assert services.events.written >= 3
