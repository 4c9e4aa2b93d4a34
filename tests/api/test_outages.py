"""Dependency outages (issue 9, point 6): a database or Redis that goes away answers 503 with
Retry-After and a problem body, not 500; /health says which dependency is down while
/health/live stays up; the same failure repeated is logged once per interval, not per request.

The outage is real as the app sees it: the reliability suite's TCP proxy
(tests/reliability/harness.py) in front of the shared PostgreSQL or Redis, which the test cuts
and restores. SQLite's outage is its write lock held past the busy timeout ("database is
locked").
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis.exceptions
import sqlalchemy.exc as sa_exc
import structlog
from decisioning_catalog import Catalog, criterion, decision_request
from sqlalchemy import event
from sqlalchemy.engine import make_url

from conftest import SIGNING_KEY, Tenant, make_tenant
from offerbase.api.app import create_app
from offerbase.config import Settings
from offerbase.store.db import Database
from offerbase.store.outages import unavailable
from reliability.harness import TcpProxy

ODS = "/data/core/ods/decisions"
REDIS_URL = os.environ.get("OFFERBASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PROXIED_PG = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


@pytest.fixture(autouse=True)
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """The records the tests log, kept instead of rendered (structlog's default renderer
    prints every traceback with its locals, which takes seconds)."""
    with structlog.testing.capture_logs() as records:
        yield records


class Outage:
    """An app whose database (or Redis) goes through `proxy`, with a tenant and a catalog."""

    def __init__(self, app: Any, client: httpx.AsyncClient, tenant: Tenant, proxy: TcpProxy):
        self.app, self.client, self.tenant, self.proxy = app, client, tenant, proxy

    async def decide(self) -> httpx.Response:
        return await self.client.post(
            ODS, json=decision_request([("dec", "web")]), headers=self.tenant.headers
        )


async def one_offer(client: httpx.AsyncClient, tenant: Tenant, *, capped: bool) -> None:
    catalog = Catalog(client, tenant)
    await catalog.placement("web")
    # A cap, so that every decision reads and consumes counters (Redis when configured).
    cap = {"limit": 10**6, "scope": "global", "entity": "offer"}
    await catalog.offer("only", ["web"], frequencyCappingConstraints=[cap] if capped else [])
    await catalog.collection("all", ["only"])
    await catalog.decision("dec", [criterion("all")])


async def serving(
    db: Database, tmp_path: Any, proxy: TcpProxy, *, capped: bool = True, **settings: Any
) -> Outage:
    config = Settings(
        data_dir=tmp_path,
        secret_key=SIGNING_KEY,
        database_url=db.url,
        snapshot_poll_seconds=0,
        **settings,
    )
    app = create_app(config, db=db)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    tenant = await make_tenant(app, client)
    await one_offer(client, tenant, capped=capped)
    return Outage(app, client, tenant, proxy)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert body["title"] == "Service Unavailable"
    assert "Traceback" not in response.text


async def recovers(outage: Outage) -> None:
    """After the restore, requests succeed again (a pooled connection that died with the
    outage may fail one more request before the pool replaces it)."""
    statuses = [(await outage.decide()).status_code for _ in range(5)]
    assert statuses[-1] == 200, statuses
    assert set(statuses) <= {200, 503}, statuses


@contextlib.asynccontextmanager
async def proxying(host: str, port: int) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(host, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


@pytest.fixture
async def pg_outage(database: Database, tmp_path: Any) -> AsyncIterator[Outage]:
    url = make_url(database.url)
    async with proxying(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = Database(url.set(port=proxy.port).render_as_string(hide_password=False))
        outage = await serving(proxied, tmp_path, proxy)
        yield outage
        await outage.client.aclose()
        proxy.restore()
        await proxied.dispose()


@PROXIED_PG
async def test_a_database_outage_answers_503_and_recovers(pg_outage: Outage) -> None:
    assert (await pg_outage.decide()).status_code == 200
    pg_outage.proxy.cut()
    headers = pg_outage.tenant.headers
    assert_unavailable(await pg_outage.decide())  # the hot path (asyncpg)
    assert_unavailable(await pg_outage.client.get("/data/core/dps/offers", headers=headers))
    health = await pg_outage.client.get("/health")
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}
    assert (await pg_outage.client.get("/health/live")).json() == {"status": "ok"}
    pg_outage.proxy.restore()
    await recovers(pg_outage)
    assert (await pg_outage.client.get("/health")).json()["checks"] == {"database": "ok"}


@PROXIED_PG
async def test_repeated_failures_are_logged_once_per_interval(
    pg_outage: Outage, captured_logs: list[dict[str, Any]]
) -> None:
    pg_outage.proxy.cut()
    for _ in range(30):
        assert_unavailable(await pg_outage.decide())
    failures = [r for r in captured_logs if r["event"] == "dependency unavailable"]
    # One record per kind of failure seen (a reset pooled connection, then refused new ones),
    # not one per request.
    assert 1 <= len(failures) <= 3, failures
    assert all(r["route"] == ODS and r["suppressed"] == 0 for r in failures), [
        (r["route"], r["suppressed"]) for r in failures
    ]


@pytest.fixture
async def redis_outage(database: Database, tmp_path: Any) -> AsyncIterator[Outage]:
    from redis.asyncio import Redis

    probe = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await probe.ping()
    except Exception:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Redis does not answer at {REDIS_URL}")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    finally:
        await probe.aclose()
    redis_url = make_url(REDIS_URL.replace("redis://", "redis+x://", 1))
    host, port = redis_url.host or "127.0.0.1", redis_url.port or 6379
    async with proxying(host, port) as proxy:
        proxied = f"redis://127.0.0.1:{proxy.port}/{redis_url.database or 0}"
        prefix = f"test-outage-{uuid.uuid4().hex}:"
        outage = await serving(database, tmp_path, proxy, redis_url=proxied, redis_prefix=prefix)
        yield outage
        await outage.client.aclose()
        proxy.restore()
        from offerbase.api.deps import services_of

        await services_of(outage.app).counters.close()
        client = Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_redis_outage_answers_503_and_recovers(redis_outage: Outage) -> None:
    assert (await redis_outage.decide()).status_code == 200
    assert (await redis_outage.client.get("/health")).json()["checks"] == {
        "database": "ok",
        "redis": "ok",
    }
    redis_outage.proxy.cut()
    assert_unavailable(await redis_outage.decide())
    health = await redis_outage.client.get("/health")
    assert health.status_code == 503
    assert health.json()["checks"] == {"database": "ok", "redis": "unavailable"}
    redis_outage.proxy.restore()
    await recovers(redis_outage)


def impatient(db: Database) -> Database:
    """`db` with a busy timeout of 50 ms instead of 30 s."""

    @event.listens_for(db.engine.sync_engine, "connect")
    def short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=50")

    return db


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_sqlite_locked_answers_503(database: Database, tmp_path: Any) -> None:
    """A write waits for SQLite's write lock for the busy timeout (30 s in production; 50 ms
    here), then fails with "database is locked": another process holds the database, which is
    an outage for this request, not a bug in it."""
    db = impatient(Database(database.url))
    outage = await serving(db, tmp_path, TcpProxy("127.0.0.1", 0))
    holder = sqlite3.connect(database.url.split("///", 1)[1], isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
        response = await outage.client.post(
            "/data/core/dps/placements",
            json={"name": "p", "channel": "https://ns.adobe.com/xdm/channel-types/web"},
            headers=outage.tenant.headers,
        )
        assert_unavailable(response)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await outage.client.aclose()
        await db.dispose()


@PROXIED_PG
async def test_shutdown_during_an_outage_counts_what_it_loses(
    pg_outage: Outage, captured_logs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graceful shutdown writes the queue, but a database that is down cannot hold it
    forever: the events it cannot write are counted as dropped and logged."""
    from offerbase.api.deps import services_of
    from offerbase.store import events

    monkeypatch.setattr(events, "SHUTDOWN_FLUSH_SECONDS", 0.5)
    writer = services_of(pg_outage.app).events
    for _ in range(3):
        assert (await pg_outage.decide()).status_code == 200
    dropped = writer.dropped
    pg_outage.proxy.cut()
    await writer.stop()
    assert writer.dropped == dropped + 3
    (lost,) = [r for r in captured_logs if r["event"] == "decision events lost at shutdown"]
    assert lost["lost"] == 3


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_durable_event_that_cannot_be_committed_fails_its_decision(
    database: Database, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durable mode never answers a decision whose event is not stored: with SQLite's write
    lock held by another process past the wait, the decision answers 503 (and its client
    retries); once the lock is free, decisions and their events go through again."""
    from offerbase.api.deps import services_of
    from offerbase.store import events

    monkeypatch.setattr(events, "DURABLE_LOCK_WAIT_SECONDS", 0.05)
    db = impatient(Database(database.url))
    proxy = TcpProxy("127.0.0.1", 0)
    outage = await serving(db, tmp_path, proxy, capped=False, events_durable=True)
    holder = sqlite3.connect(database.url.split("///", 1)[1], isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        assert_unavailable(await outage.decide())
        holder.execute("ROLLBACK")
        assert (await outage.decide()).status_code == 200
        assert services_of(outage.app).events.written == 1
    finally:
        holder.close()
        await outage.client.aclose()
        await db.dispose()


def test_rate_limited_errors_count_what_they_suppress() -> None:
    from offerbase.logs import RateLimitedErrors

    now = [0.0]
    with structlog.testing.capture_logs() as records:
        errors = RateLimitedErrors(structlog.get_logger("t"), interval=10, clock=lambda: now[0])
        boom = ConnectionRefusedError("refused")
        written = [errors.error(("a",), "failed", boom) for _ in range(5)]
        assert errors.error(("b",), "failed", boom)  # another kind is logged at once
        now[0] = 10.0
        assert errors.error(("a",), "failed", boom)
    assert written == [True, False, False, False, False]
    assert [r["suppressed"] for r in records] == [0, 0, 4]


async def flush_error(writer: Any) -> BaseException | None:
    try:
        await writer.flush()
    except Exception as exc:  # what the writer raises is what the test looks at
        return exc
    return None


@PROXIED_PG
async def test_events_queued_during_an_outage_are_written_after_it(pg_outage: Outage) -> None:
    from offerbase.api.deps import services_of

    writer = services_of(pg_outage.app).events
    for _ in range(3):
        assert (await pg_outage.decide()).status_code == 200
    written = writer.written
    pg_outage.proxy.cut()
    failure = await flush_error(writer)  # as the background task's round: logged, events kept
    assert failure is not None
    assert unavailable(failure)
    pg_outage.proxy.restore()
    # A pooled connection that died with the outage may fail one more round.
    failures = [await flush_error(writer) for _ in range(3)]
    assert all(f is None or unavailable(f) for f in failures), failures
    assert writer.written == written + 3
    assert writer.rejected == 0


def _wrapped(orig: BaseException) -> BaseException:
    """As SQLAlchemy raises a driver's error."""
    return sa_exc.OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("exc", "is_outage"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError(), True),
        (_wrapped(sqlite3.OperationalError("database is locked")), True),
        (_wrapped(sqlite3.OperationalError("database or disk is full")), True),
        (_wrapped(sqlite3.OperationalError("no such table: offers")), False),  # a bug
        (sqlite3.IntegrityError("FOREIGN KEY constraint failed"), False),  # a bad row
        (asyncpg.exceptions.CannotConnectNowError("starting up"), True),
        (asyncpg.exceptions.AdminShutdownError("terminating"), True),
        (asyncpg.exceptions.TooManyConnectionsError("too many"), True),
        (asyncpg.exceptions.ForeignKeyViolationError("fk"), False),
        (asyncpg.exceptions.UndefinedTableError("no table"), False),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed"), True),
        (redis.exceptions.ConnectionError("down"), True),
        (redis.exceptions.TimeoutError("slow"), True),
        (redis.exceptions.ResponseError("WRONGTYPE"), False),
        (ValueError("a bug"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_which_errors_are_outages(exc: BaseException, is_outage: bool) -> None:
    assert unavailable(exc) is is_outage


def test_only_the_cause_counts_not_the_context() -> None:
    """A bug raised while handling a timeout is a bug; one raised *from* an outage is one."""
    bug = ValueError("a bug in the handler")
    bug.__context__ = TimeoutError()
    assert not unavailable(bug)
    caused = RuntimeError("wrapped")
    caused.__cause__ = ConnectionResetError()
    assert unavailable(caused)
