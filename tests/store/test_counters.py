"""Capping counters: all-or-nothing conditional increments on SQLite, PostgreSQL and Redis.

The concurrency tests are the point: however many decisions race for the last units of a cap,
exactly `limit` of them win, within one process (asyncio.gather over pooled connections) and
across processes (each with its own engine / Redis client).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from offerbase.store import tenants
from offerbase.store.counters import (
    COUNTER_TTL_SECONDS,
    REDIS_PREFIX,
    CounterStore,
    RedisCounterStore,
    SqlCounterStore,
    counter_store,
    redis_key,
    redis_namespace,
)
from offerbase.store.db import Database

REDIS_URL = os.environ.get("OFFERBASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# The keys of these tests: a deployment of their own, never a real one's.
NAMESPACE = redis_namespace(REDIS_PREFIX, "store-tests")
IN_CI = os.environ.get("CI", "").lower() == "true"

# Every test runs on the three backends; the SQL ones reuse the session `database` fixture
# (tests/conftest.py), the Redis run takes the SQLite one, which it does not use.
pytestmark = pytest.mark.parametrize(
    ("database", "kind"),
    [("sqlite", "sql"), ("postgresql", "sql"), ("sqlite", "redis")],
    indirect=True,
    ids=["sqlite", "postgresql", "redis"],
    scope="session",  # one database per backend for the module, not one per test
)


async def _redis_available() -> bool:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except Exception:  # any failure means "no server here"
        return False
    finally:
        await client.aclose()


@dataclass
class Backend:
    name: str
    store: CounterStore
    url: str  # what a separate process needs to open the same store
    new_sandbox: Callable[[], Awaitable[int]]


@pytest.fixture(scope="session")
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def backend(database: Database, kind: str) -> AsyncIterator[Backend]:
    if kind == "sql":
        org = f"{uuid.uuid4().hex[:24].upper()}@AdobeOrg"

        async def new_sql_sandbox() -> int:
            async with database.write() as conn:
                sandbox = await tenants.ensure_sandbox(conn, org, secrets.token_hex(4))
            return sandbox.pk

        store = SqlCounterStore(database)
        yield Backend("sql", store, database.url, new_sql_sandbox)
        await store.close()
        return
    if not await _redis_available():
        if IN_CI:
            pytest.fail(f"CI=true but Redis does not answer at {REDIS_URL}")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    used: list[int] = []

    async def new_redis_sandbox() -> int:
        # a random pk far above real ones: keys of this test never meet anyone else's
        used.append(10**12 + secrets.randbelow(10**12))
        return used[-1]

    store = RedisCounterStore(REDIS_URL, namespace=NAMESPACE)
    yield Backend("redis", store, REDIS_URL, new_redis_sandbox)
    await store.close()
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    for pk in used:  # delete only this test's keys
        keys = [k async for k in client.scan_iter(match=f"{NAMESPACE}{{{pk}}}:*")]
        if keys:
            await client.delete(*keys)
    await client.aclose()


async def test_get_many_missing_keys(backend: Backend) -> None:
    pk = await backend.new_sandbox()
    got = await backend.store.get_many(pk, ["cap|a", "cap|b"])
    assert all(got.get(k, 0) == 0 for k in ("cap|a", "cap|b"))
    assert await backend.store.get_many(pk, []) == {}


async def test_try_consume_increments(backend: Backend) -> None:
    pk = await backend.new_sandbox()
    assert await backend.store.try_consume(pk, [("cap|a", 3), ("cap|b", 10)])
    assert await backend.store.try_consume(pk, [("cap|a", 3)])
    assert await backend.store.get_many(pk, ["cap|a", "cap|b", "cap|c"]) == {"cap|a": 2, "cap|b": 1}
    assert await backend.store.try_consume(pk, [("cap|a", 3)])
    assert not await backend.store.try_consume(pk, [("cap|a", 3)])
    assert await backend.store.get_many(pk, ["cap|a"]) == {"cap|a": 3}
    assert await backend.store.try_consume(pk, [])  # nothing to consume: nothing can be capped


async def test_all_or_nothing(backend: Backend) -> None:
    pk = await backend.new_sandbox()
    assert await backend.store.try_consume(pk, [("cap|full", 1)])
    # "cap|full" is at its limit: neither it nor the keys before/after it may move
    items = [("cap|aaa", 5), ("cap|full", 1), ("cap|zzz", 5)]
    assert not await backend.store.try_consume(pk, items)
    got = await backend.store.get_many(pk, ["cap|aaa", "cap|full", "cap|zzz"])
    assert got.get("cap|aaa", 0) == 0
    assert got.get("cap|zzz", 0) == 0
    assert got["cap|full"] == 1
    # a key that exists and has room, before a capped one: rolled back too
    assert await backend.store.try_consume(pk, [("cap|aaa", 5)])
    assert not await backend.store.try_consume(pk, items)
    assert (await backend.store.get_many(pk, ["cap|aaa"]))["cap|aaa"] == 1


async def test_limit_zero_or_less_is_capped(backend: Backend) -> None:
    pk = await backend.new_sandbox()
    assert not await backend.store.try_consume(pk, [("cap|z", 0)])
    assert not await backend.store.try_consume(pk, [("cap|ok", 5), ("cap|neg", -1)])
    assert (await backend.store.get_many(pk, ["cap|z", "cap|ok", "cap|neg"])).get("cap|ok", 0) == 0


async def test_repeated_key_counts_each_time(backend: Backend) -> None:
    # the engine lists a counter once per proposal consuming it (same offer in two scopes)
    pk = await backend.new_sandbox()
    assert await backend.store.try_consume(pk, [("cap|d", 3), ("cap|d", 3)])
    assert (await backend.store.get_many(pk, ["cap|d"]))["cap|d"] == 2
    assert not await backend.store.try_consume(pk, [("cap|d", 3), ("cap|d", 3)])
    assert (await backend.store.get_many(pk, ["cap|d"]))["cap|d"] == 2
    assert await backend.store.try_consume(pk, [("cap|d", 3)])


async def test_add_counts_past_the_limit_and_each_listing(backend: Backend) -> None:
    # Feedback (displays, clicks) adds what happened: no limit, n for a key listed n times.
    pk = await backend.new_sandbox()
    assert await backend.store.try_consume(pk, [("cap|f", 1)])
    await backend.store.add(pk, ["cap|f", "cap|g", "cap|f"])
    await backend.store.add(pk, [])
    assert await backend.store.get_many(pk, ["cap|f", "cap|g"]) == {"cap|f": 3, "cap|g": 1}
    assert not await backend.store.try_consume(pk, [("cap|f", 3)])
    assert await backend.store.try_consume(pk, [("cap|f", 4)])
    if backend.name == "redis":  # a counter that add creates expires like any other
        from redis.asyncio import Redis

        client = Redis.from_url(REDIS_URL)
        ttl = await client.ttl(redis_key(NAMESPACE, pk, "cap|g"))
        await client.aclose()
        assert COUNTER_TTL_SECONDS - 60 < ttl <= COUNTER_TTL_SECONDS


async def test_added_counters_expire_and_restart(backend: Backend) -> None:
    if backend.name == "redis":
        pytest.skip("Redis expires keys itself (TTL checked above)")
    assert isinstance(backend.store, SqlCounterStore)
    pk = await backend.new_sandbox()
    now = [1_800_000_000.0]
    store = SqlCounterStore(backend.store.db, clock=lambda: now[0])
    await store.add(pk, ["cap|e", "cap|e"])
    now[0] += COUNTER_TTL_SECONDS
    assert await store.get_many(pk, ["cap|e"]) == {}
    await store.add(pk, ["cap|e"])
    assert await store.get_many(pk, ["cap|e"]) == {"cap|e": 1}


async def test_sandboxes_are_isolated(backend: Backend) -> None:
    one, two = await backend.new_sandbox(), await backend.new_sandbox()
    assert await backend.store.try_consume(one, [("cap|same", 1)])
    assert not await backend.store.try_consume(one, [("cap|same", 1)])
    assert await backend.store.get_many(two, ["cap|same"]) in ({}, {"cap|same": 0})
    assert await backend.store.try_consume(two, [("cap|same", 1)])
    assert await backend.store.get_many(one, ["cap|same"]) == {"cap|same": 1}
    assert await backend.store.get_many(two, ["cap|same"]) == {"cap|same": 1}


async def test_concurrent_consumers_never_exceed_the_cap(backend: Backend) -> None:
    pk = await backend.new_sandbox()
    cap = 20
    # every call also consumes a roomy second counter: the all-or-nothing path under contention
    results = await asyncio.gather(
        *(
            backend.store.try_consume(pk, [("cap|hot", cap), ("cap|roomy", 10**6)])
            for _ in range(200)
        )
    )
    assert sum(results) == cap
    assert await backend.store.get_many(pk, ["cap|hot", "cap|roomy"]) == {
        "cap|hot": cap,
        "cap|roomy": cap,
    }


_CHILD = """
import asyncio, json, sys, time
from offerbase.store.counters import RedisCounterStore, SqlCounterStore
from offerbase.store.db import Database

backend, url, pk, attempts, cap, start_at = sys.argv[1:]
pk, attempts, cap, start_at = int(pk), int(attempts), int(cap), float(start_at)

async def main():
    db = Database(url) if backend == "sql" else None
    namespace = "offerbase:cap:store-tests:"  # NAMESPACE
    store = SqlCounterStore(db) if db else RedisCounterStore(url, namespace=namespace)
    await store.get_many(pk, ["warm-up"])  # connect before the start line
    gate = asyncio.Semaphore(8)  # 8 in flight per process: few PostgreSQL connections

    async def attempt():
        async with gate:
            return await store.try_consume(pk, [("cap|mp", cap), ("cap|mp-roomy", 10**6)])

    await asyncio.sleep(max(0.0, start_at - time.time()))
    results = await asyncio.gather(*(attempt() for _ in range(attempts)))
    await store.close()
    if db:
        await db.dispose()
    print(json.dumps(sum(results)))

asyncio.run(main())
"""


async def test_concurrent_processes_never_exceed_the_cap(backend: Backend) -> None:
    pk = await backend.new_sandbox()
    processes, attempts, cap = 4, 50, 37
    # all children start their attempts at the same instant, once every one has imported
    start_at = time.time() + 1.5
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            backend.name,
            backend.url,
            str(pk),
            str(attempts),
            str(cap),
            str(start_at),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    wins = []
    for child in children:
        out, err = await child.communicate()
        assert child.returncode == 0, err.decode()
        wins.append(json.loads(out))
    assert sum(wins) == cap, wins
    assert await backend.store.get_many(pk, ["cap|mp", "cap|mp-roomy"]) == {
        "cap|mp": cap,
        "cap|mp-roomy": cap,
    }


async def test_counters_expire(backend: Backend) -> None:
    pk = await backend.new_sandbox()
    if backend.name == "redis":
        assert await backend.store.try_consume(pk, [("cap|ttl", 5)])
        from redis.asyncio import Redis

        client = Redis.from_url(REDIS_URL)
        ttl = await client.ttl(redis_key(NAMESPACE, pk, "cap|ttl"))
        assert COUNTER_TTL_SECONDS - 60 < ttl <= COUNTER_TTL_SECONDS
        # the TTL is set on creation only, never pushed back by later increments
        await client.expire(redis_key(NAMESPACE, pk, "cap|ttl"), 1000)
        assert await backend.store.try_consume(pk, [("cap|ttl", 5)])
        assert await client.ttl(redis_key(NAMESPACE, pk, "cap|ttl")) <= 1000
        await client.aclose()
        return
    assert isinstance(backend.store, SqlCounterStore)
    now = [1_800_000_000.0]
    store = SqlCounterStore(backend.store.db, clock=lambda: now[0])
    assert await store.try_consume(pk, [("cap|ttl", 2)])
    assert await store.try_consume(pk, [("cap|ttl", 2)])
    assert not await store.try_consume(pk, [("cap|ttl", 2)])
    now[0] += COUNTER_TTL_SECONDS - 1
    assert not await store.try_consume(pk, [("cap|ttl", 2)])  # not yet expired
    now[0] += 1
    assert await store.get_many(pk, ["cap|ttl"]) == {}  # expired: reads as absent
    assert await store.try_consume(pk, [("cap|ttl", 2)])  # and restarts at 0
    assert await store.get_many(pk, ["cap|ttl"]) == {"cap|ttl": 1}
    now[0] += COUNTER_TTL_SECONDS - 1  # the restarted counter got a fresh expiry
    assert await store.get_many(pk, ["cap|ttl"]) == {"cap|ttl": 1}
    now[0] += 1
    assert await store.purge_expired() >= 1
    assert await store.get_many(pk, ["cap|ttl"]) == {}


async def test_counter_store_picks_the_backend(backend: Backend, database: Database) -> None:
    sql = counter_store(database, None)
    assert isinstance(sql, SqlCounterStore)
    redis_store = counter_store(database, REDIS_URL)
    assert isinstance(redis_store, RedisCounterStore)
    await redis_store.close()
