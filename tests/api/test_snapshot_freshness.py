"""How fresh the catalog behind a decision is (the snapshot cache, api/snapshots.py): a write
is used by the next decision on the same worker; another worker's write within the poll
interval plus one rebuild, even for a burst after an idle period; an id the snapshot does not
know is looked up once before the 404."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from decisioning_catalog import Catalog, criterion, decision_request, option_ids

ODS = "/data/core/ods/decisions"
# Long enough that only the mechanisms under test can refresh a snapshot during a test.
NEVER = 3600.0


@pytest.fixture
def app_options(request):  # type: ignore[no-untyped-def]
    """This module's apps; a test parametrizes the poll interval (indirect)."""
    return getattr(request, "param", {"snapshot_poll_seconds": NEVER})


@pytest.fixture
async def other_worker(make_app) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database: another worker process, as far as caches go."""
    app = make_app(snapshot_poll_seconds=NEVER)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker-2") as http:
        yield http


async def _catalog(client, tenant) -> None:  # type: ignore[no-untyped-def]
    catalog = Catalog(client, tenant)
    await catalog.placement("web")
    await catalog.offer("gold", ["web"], priority=9)
    await catalog.fallback("fb", ["web"])
    await catalog.collection("all", ["gold"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")


async def _decide(client, tenant, activity: str = "dec"):  # type: ignore[no-untyped-def]
    response = await client.post(
        ODS, json=decision_request([(activity, "web")]), headers=tenant.headers
    )
    return response


async def _archive(client, tenant) -> None:  # type: ignore[no-untyped-def]
    response = await client.patch(
        "/data/core/dps/offers/gold?offer-type=personalized",
        json=[{"op": "replace", "path": "/status", "value": "archived"}],
        headers={**tenant.headers, "Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text


def _offered(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return option_ids(response.json()["xdm:propositions"][0])


async def test_a_write_is_used_by_the_next_decision_on_the_same_worker(client, tenant) -> None:
    await _catalog(client, tenant)
    assert _offered(await _decide(client, tenant)) == ["gold"]
    await _archive(client, tenant)
    assert _offered(await _decide(client, tenant)) == ["fallback:fb"]  # at once


async def test_an_unknown_decision_is_looked_up_once_before_the_404(
    client, tenant, other_worker
) -> None:
    await _catalog(client, tenant)
    assert _offered(await _decide(client, tenant)) == ["gold"]
    # created through another worker: this one's snapshot does not know it yet
    await Catalog(other_worker, tenant).decision("dec2", [criterion("all")], fallback="fb")
    assert _offered(await _decide(client, tenant, "dec2")) == ["gold"]
    assert (await _decide(client, tenant, "no-such-decision")).status_code == 404


@pytest.mark.parametrize("app_options", [{"snapshot_poll_seconds": 0.2}], indirect=True)
async def test_a_burst_after_idle_never_gets_a_snapshot_older_than_the_interval(
    client, tenant, other_worker
) -> None:
    await _catalog(client, tenant)
    assert _offered(await _decide(client, tenant)) == ["gold"]
    await _archive(other_worker, tenant)
    await asyncio.sleep(0.3)  # idle for longer than the poll interval
    burst = await asyncio.gather(*(_decide(client, tenant) for _ in range(20)))
    assert [_offered(r) for r in burst] == [["fallback:fb"]] * 20


@pytest.fixture
async def listening_worker(make_app, database):  # type: ignore[no-untyped-def]
    """Another worker that listens for catalog notifications, as `offerbase serve` starts it
    (ASGITransport runs no lifespan, so the fixture starts and stops the listener)."""
    app = make_app(snapshot_poll_seconds=NEVER)
    snapshots = app.state.services.snapshots
    await snapshots.start()
    if snapshots.listener is not None:
        await asyncio.wait_for(snapshots.listener.connected.wait(), 10)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker-2") as http:
        yield http, snapshots
    await snapshots.stop()


async def _offered_soon(client, tenant, expected: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """What the worker offers once it shows `expected`, or after 40 tries 50 ms apart: a
    notification arrives in milliseconds, the poll interval here is an hour."""
    offered: list[str] = []
    for _ in range(40):
        offered = _offered(await _decide(client, tenant))
        if offered == expected:
            break
        await asyncio.sleep(0.05)
    return offered


async def test_postgresql_notifies_every_worker_of_a_write_at_once(
    client, tenant, listening_worker, database
) -> None:
    worker, snapshots = listening_worker
    if database.is_sqlite:  # no notifications: SQLite workers poll
        assert snapshots.listener is None
        return
    await _catalog(client, tenant)
    assert _offered(await _decide(worker, tenant)) == ["gold"]
    await _archive(client, tenant)  # through the first worker
    assert await _offered_soon(worker, tenant, ["fallback:fb"]) == ["fallback:fb"]


async def test_the_listener_reconnects_and_rechecks_what_it_missed(
    client, tenant, listening_worker, database
) -> None:
    worker, snapshots = listening_worker
    if database.is_sqlite:
        return
    await _catalog(client, tenant)
    assert _offered(await _decide(worker, tenant)) == ["gold"]
    listener = snapshots.listener
    # The LISTEN session ends, as when PostgreSQL restarts or a proxy cuts it.
    async with database.engine.connect() as conn:
        await conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        )
        await conn.commit()
    for _ in range(100):
        if not listener.connected.is_set():
            break
        await asyncio.sleep(0.01)
    await _archive(client, tenant)  # while no LISTEN is active: this notification is lost
    await asyncio.wait_for(listener.connected.wait(), 10)
    assert listener.connections == 2
    assert await _offered_soon(worker, tenant, ["fallback:fb"]) == ["fallback:fb"]


async def test_an_invalidation_voids_the_version_check_in_flight(services, tenant) -> None:
    """A write that commits while a version check awaits the database (which may have read
    the version just before the commit) must not leave that check's answer marked fresh."""
    from offerbase.store import tenants

    async with services.db.read() as conn:
        sandbox = await tenants.get_sandbox(conn, tenant.org, tenant.sandbox)
    cache = services.snapshots
    await cache.get(sandbox)
    in_flight = asyncio.create_task(cache.get(sandbox, recheck=True))
    await asyncio.sleep(0)  # PostgreSQL: the check now awaits the version (SQLite: it is done)
    cache.invalidate(sandbox.pk)  # what a committed write does
    await in_flight
    checks = cache.checks
    await cache.get(sandbox)
    assert cache.checks == checks + 1


async def test_a_replaced_snapshot_is_freed_without_the_cyclic_collector(
    client, tenant, services
) -> None:
    """A serving process freezes each snapshot out of the cyclic collector (api/snapshots.py),
    which is sound only while a snapshot holds no reference cycle: the one a write replaces,
    frozen, used by decisions (its memo of plans filled) over every kind (rules, formulas,
    strategies), must be freed by reference counting alone."""
    import gc
    import weakref

    from factories import Api, build_graph

    from offerbase.store import tenants

    services.snapshots.freeze = True  # as the app's start-up sets it (no lifespan here)
    await build_graph(Api(client, tenant))  # one entity of every kind
    await _catalog(client, tenant)
    frozen = gc.get_freeze_count()
    assert _offered(await _decide(client, tenant)) == ["gold"]
    assert gc.get_freeze_count() > frozen
    async with services.db.read() as conn:
        sandbox = await tenants.get_sandbox(conn, tenant.org, tenant.sandbox)
    old = weakref.ref(await services.snapshots.get(sandbox))
    builds = services.snapshots.builds
    gc.disable()
    try:
        await Api(client, tenant).create("tag")  # a write: the next decision rebuilds
        assert _offered(await _decide(client, tenant)) == ["gold"]
        assert services.snapshots.builds == builds + 1
        assert old() is None
    finally:
        gc.enable()
