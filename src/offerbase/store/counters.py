"""Capping counters: atomic, all-or-nothing conditional increments (SQL or Redis).

The engine (`offerbase.engine.decide`) reads counters with `get_many`, decides, and returns the
counters its proposals consume as `CapConsumption(key, limit)`. The caller then calls
`try_consume(sandbox_pk, [(key, limit), ...])`: every counter is incremented only if every one of
them is still below its limit, atomically across processes, so concurrent decisions never serve
an offer beyond its cap. When it returns False nothing changed; the caller decides again with
fresh counters (the offer that hit its cap is then filtered out).

A key listed n times in one call is incremented by n, and only if ``value + n <= limit`` (the
engine lists a counter once per proposal that consumes it). A limit of 0 or less is always
capped. Counters expire `COUNTER_TTL_SECONDS` after their creation (Adobe resets counters at the
latest 2 years after the offer start); an expired counter reads as absent and restarts at 0.

Feedback events (impressions, clicks, custom events: engine/feedback.py) increment counters
unconditionally with `add`; on SQL inside the caller's transaction (`add_in`), which also
inserts the interaction rows that make the event new (store/interactions.py, `insert_counted`).

Semantics and the atomicity argument per backend: docs/development.md, "Capping counters storage".
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase.store.db import Database
from offerbase.store.deployment import deployment_id
from offerbase.store.scope import Scope, across_tenants, raw_sql, template
from offerbase.store.tables import capping_counters

# 2 years (the longest, 731 days, has a leap day) + 1 day of slack: 732 days.
COUNTER_TTL_SECONDS = 732 * 86_400
# The default of OFFERBASE_REDIS_PREFIX; keys are `<prefix>cap:<deployment id>:...`.
REDIS_PREFIX = "offerbase:"
# A Redis that does not answer fails the request (503) after this long, not after the OS's
# TCP timeout; a reachable Redis answers in well under a millisecond.
REDIS_TIMEOUT_SECONDS = 2.0
_READ_CHUNK = 500  # keys per IN (...) list: well under SQLite's bound-parameter limit
# Counters one `read_prefixed` call answers at most (a batch job holds them in memory).
MAX_PREFIXED = 2_000_000


class TooManyCounters(Exception):
    """More live counters match the prefixes than MAX_PREFIXED."""


class CounterStore(Protocol):
    async def get_many(self, sandbox_pk: int, keys: Sequence[str]) -> dict[str, int]:
        """Current values; a missing (or expired) key is absent from the answer."""
        ...

    async def try_consume(self, sandbox_pk: int, items: Sequence[tuple[str, int]]) -> bool:
        """Increment every key by 1 if every key is below its limit, else change nothing."""
        ...

    async def add(self, sandbox_pk: int, keys: Sequence[str]) -> None:
        """Increment every key by 1 (by n when listed n times), whatever its value: what
        feedback events (displays, clicks) count has happened already."""
        ...

    async def read_prefixed(self, sandbox_pk: int, prefixes: Sequence[str]) -> dict[str, int]:
        """Every live counter whose key starts with one of `prefixes` (a batch job reads the
        per-profile counters of the offers it may propose: `cap|<offer>|<constraint>|profile|`).
        Raises TooManyCounters beyond MAX_PREFIXED."""
        ...

    async def ping(self) -> bool:
        """Does the backend answer? (/health)"""
        ...

    async def close(self) -> None: ...


def _plan(items: Sequence[tuple[str, int]]) -> list[tuple[str, int, int]] | None:
    """(key, increment, limit) per distinct key, sorted by key; None when already capped.

    Duplicates add up and take the smallest limit. Sorting gives every transaction the same
    lock order on PostgreSQL (no deadlocks between two decisions consuming the same keys).
    """
    merged: dict[str, list[int]] = {}
    for key, limit in items:
        got = merged.get(key)
        if got is None:
            merged[key] = [1, int(limit)]
        else:
            got[0] += 1
            got[1] = min(got[1], int(limit))
    plan = [(key, n, limit) for key, (n, limit) in sorted(merged.items())]
    if any(n > limit for _, n, limit in plan):  # also catches limit <= 0
        return None
    return plan


@cache  # one entry per chunk length, at most _READ_CHUNK
def _read_sql(count: int) -> str:
    """The live counters among `count` keys (`:k<i>`, `:now`), compiled once per count."""
    t = capping_counters
    keys: list[sa.BindParameter[str]] = [sa.bindparam(f"k{i}") for i in range(count)]
    return raw_sql(
        sa.select(t.c.key, t.c.value).where(t.c.key.in_(keys), t.c.expires_at > sa.bindparam("now"))
    )


class _Capped(Exception):
    """Raised inside the write transaction to roll it back."""


class SqlCounterStore:
    """Counters in the `capping_counters` table (SQLite or PostgreSQL), one write transaction.

    Per key, in key order: ``INSERT ... ON CONFLICT (sandbox_pk, key) DO UPDATE SET value =
    value + n WHERE value + n <= limit RETURNING value``. No returned row means capped: the
    transaction is rolled back, so no key of the call is incremented.
    """

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock
        t = capping_counters
        insert = sqlite.insert(t) if db.is_sqlite else postgresql.insert(t)
        stmt = insert.values(
            key=sa.bindparam("key"),
            value=sa.bindparam("n"),
            expires_at=sa.bindparam("expires_at"),
        )
        expired = t.c.expires_at <= sa.bindparam("now")
        upsert = stmt.on_conflict_do_update(
            index_elements=[t.c.sandbox_pk, t.c.key],
            set_={
                # an expired counter restarts from 0 with a fresh expiry, as if it were new
                "value": sa.case(
                    (expired, stmt.excluded.value), else_=t.c.value + stmt.excluded.value
                ),
                "expires_at": sa.case((expired, stmt.excluded.expires_at), else_=t.c.expires_at),
            },
            where=sa.or_(expired, t.c.value + stmt.excluded.value <= sa.bindparam("limit")),
        ).returning(t.c.value)
        # Built once and run with Scope.params(): the sandbox comes in as the :tenant parameter.
        self._upsert = template(upsert)
        # Feedback counts: the same upsert without the limit (what happened is counted).
        self._add = template(
            stmt.on_conflict_do_update(
                index_elements=[t.c.sandbox_pk, t.c.key],
                set_={
                    "value": sa.case(
                        (expired, stmt.excluded.value), else_=t.c.value + stmt.excluded.value
                    ),
                    "expires_at": sa.case(
                        (expired, stmt.excluded.expires_at), else_=t.c.expires_at
                    ),
                },
            )
        )

    async def get_many(self, sandbox_pk: int, keys: Sequence[str]) -> dict[str, int]:
        # On the decisioning hot path: plain SQL on the database's fastest read path.
        wanted = list(dict.fromkeys(keys))
        out: dict[str, int] = {}
        now = int(self._clock())
        scope = Scope(sandbox_pk)
        for i in range(0, len(wanted), _READ_CHUNK):
            chunk = wanted[i : i + _READ_CHUNK]
            params = scope.params(now=now)
            params.update({f"k{j}": key for j, key in enumerate(chunk)})
            rows = await self.db.point_read(_read_sql(len(chunk)), params)
            out.update({key: int(value) for key, value in rows})
        return out

    async def try_consume(self, sandbox_pk: int, items: Sequence[tuple[str, int]]) -> bool:
        plan = _plan(items)
        if plan is None:
            return False
        if not plan:
            return True
        now = int(self._clock())
        expires_at = now + COUNTER_TTL_SECONDS
        scope = Scope(sandbox_pk)
        try:
            async with self.db.write() as conn:
                for key, n, limit in plan:
                    params = scope.params(key=key, n=n, limit=limit, now=now, expires_at=expires_at)
                    row = (await conn.execute(self._upsert, params)).first()
                    if row is None:
                        raise _Capped
        except _Capped:
            return False
        return True

    async def add(self, sandbox_pk: int, keys: Sequence[str]) -> None:
        if not keys:
            return
        async with self.db.write() as conn:
            await self.add_in(conn, sandbox_pk, keys)

    async def add_in(self, conn: AsyncConnection, sandbox_pk: int, keys: Sequence[str]) -> None:
        """`add` inside the caller's write transaction (committed or rolled back with it)."""
        now = int(self._clock())
        expires_at = now + COUNTER_TTL_SECONDS
        scope = Scope(sandbox_pk)
        for key, n in sorted(Counter(keys).items()):  # key order: the lock order of try_consume
            params = scope.params(key=key, n=n, now=now, expires_at=expires_at)
            await conn.execute(self._add, params)

    async def read_prefixed(self, sandbox_pk: int, prefixes: Sequence[str]) -> dict[str, int]:
        t = capping_counters
        out: dict[str, int] = {}
        now = int(self._clock())
        scope = Scope(sandbox_pk)
        async with self.db.read() as conn:
            for prefix in dict.fromkeys(prefixes):
                # substr, not LIKE: keys hold '%' (escaped ids) and '_'
                query = sa.select(t.c.key, t.c.value).where(
                    sa.func.substr(t.c.key, 1, len(prefix)) == prefix, t.c.expires_at > now
                )
                result = await conn.stream(scope.apply(query))
                async for key, value in result:
                    out[key] = int(value)
                    if len(out) > MAX_PREFIXED:
                        raise TooManyCounters(f"more than {MAX_PREFIXED} counters")
        return out

    async def purge_expired(self) -> int:
        """Delete expired counters of every sandbox (housekeeping; reads already ignore them).
        Returns the count."""
        t = capping_counters
        expired = across_tenants(sa.delete(t).where(t.c.expires_at <= int(self._clock())))
        async with self.db.write() as conn:
            result = await conn.execute(expired)
        return result.rowcount or 0

    async def ping(self) -> bool:
        return await self.db.ping()

    async def close(self) -> None:
        """The Database belongs to the caller: nothing to release."""


# KEYS: the counters. ARGV[1]: TTL in seconds; ARGV[2i], ARGV[2i+1]: increment and limit of
# KEYS[i]. Redis runs a script alone (no other command interleaves), so check-all-then-
# increment-all is atomic; a capped call returns 0 before writing anything.
_CONSUME_LUA = """
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  local value = tonumber(redis.call('GET', KEYS[i]) or '0')
  if value + tonumber(ARGV[2 * i]) > tonumber(ARGV[2 * i + 1]) then
    return 0
  end
end
for i = 1, #KEYS do
  local n = tonumber(ARGV[2 * i])
  if redis.call('INCRBY', KEYS[i], n) == n then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return 1
"""


# KEYS: the counters; ARGV[1]: TTL in seconds; ARGV[i + 1]: increment of KEYS[i]. Unconditional
# (feedback counts); a key just created gets its expiry, as in _CONSUME_LUA.
_ADD_LUA = """
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  local n = tonumber(ARGV[i + 1])
  if redis.call('INCRBY', KEYS[i], n) == n then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return 1
"""


def redis_namespace(prefix: str, deployment: str) -> str:
    """Where a deployment's counters live: ``<prefix>cap:<deployment id>:``."""
    return f"{prefix}cap:{deployment}:"


def redis_key(namespace: str, sandbox_pk: int, key: str) -> str:
    """``<namespace>{<sandbox_pk>}:<key>``; the braces are a Redis Cluster hash tag: all
    counters of a sandbox live in one slot, so one script may touch several of them. The
    sandbox pk is unique within a database only; the namespace's deployment id makes the key
    unique among every database that shares the Redis (store/deployment.py)."""
    return f"{namespace}{{{sandbox_pk}}}:{key}"


class RedisCounterStore:
    """Counters in Redis: one Lua script (EVALSHA, EVAL on NOSCRIPT) per `try_consume`.

    `namespace` is the key prefix (`redis_namespace`), or an async function that finds it
    (the app's: it reads the deployment id from the database on first use)."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str | Callable[[], Awaitable[str]],
        max_connections: int = 64,
    ) -> None:
        # imported here: Redis is optional
        from redis.asyncio import BlockingConnectionPool, Redis

        # A blocking pool: a burst of concurrent decisions waits for a connection (up to 10 s)
        # instead of failing with "Too many connections".
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=10,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._redis = Redis.from_pool(pool)  # owns the pool: aclose() disconnects it
        self._consume = self._redis.register_script(_CONSUME_LUA)
        self._add = self._redis.register_script(_ADD_LUA)
        self._namespace = namespace if isinstance(namespace, str) else None
        self._find_namespace = None if isinstance(namespace, str) else namespace

    async def namespace(self) -> str:
        if self._namespace is None:
            assert self._find_namespace is not None  # one of the two is always set
            self._namespace = await self._find_namespace()
        return self._namespace

    async def ping(self) -> bool:
        """Does Redis answer? (/health)"""
        return bool(await self._redis.ping())

    async def get_many(self, sandbox_pk: int, keys: Sequence[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        namespace = self._namespace or await self.namespace()
        values = await self._redis.mget([redis_key(namespace, sandbox_pk, k) for k in wanted])
        return {k: int(v) for k, v in zip(wanted, values, strict=True) if v is not None}

    async def read_prefixed(self, sandbox_pk: int, prefixes: Sequence[str]) -> dict[str, int]:
        namespace = self._namespace or await self.namespace()
        out: dict[str, int] = {}
        for prefix in dict.fromkeys(prefixes):
            head = redis_key(namespace, sandbox_pk, prefix)
            pattern = "".join("\\" + c if c in "*?[]\\" else c for c in head) + "*"
            batch: list[str] = []
            async for found in self._redis.scan_iter(match=pattern, count=1000):
                batch.append(found.decode() if isinstance(found, bytes) else found)
                if len(batch) >= _READ_CHUNK:
                    out.update(await self._values(batch, len(head) - len(prefix)))
                    batch = []
                if len(out) + len(batch) > MAX_PREFIXED:
                    raise TooManyCounters(f"more than {MAX_PREFIXED} counters")
            out.update(await self._values(batch, len(head) - len(prefix)))
        return out

    async def _values(self, redis_keys: list[str], cut: int) -> dict[str, int]:
        if not redis_keys:
            return {}
        values = await self._redis.mget(redis_keys)
        return {k[cut:]: int(v) for k, v in zip(redis_keys, values, strict=True) if v is not None}

    async def try_consume(self, sandbox_pk: int, items: Sequence[tuple[str, int]]) -> bool:
        plan = _plan(items)
        if plan is None:
            return False
        if not plan:
            return True
        namespace = self._namespace or await self.namespace()
        keys = [redis_key(namespace, sandbox_pk, key) for key, _, _ in plan]
        args: list[int] = [COUNTER_TTL_SECONDS]
        for _, n, limit in plan:
            args += (n, limit)
        return bool(await self._consume(keys=keys, args=args))

    async def add(self, sandbox_pk: int, keys: Sequence[str]) -> None:
        if not keys:
            return
        namespace = self._namespace or await self.namespace()
        counted = sorted(Counter(keys).items())
        await self._add(
            keys=[redis_key(namespace, sandbox_pk, key) for key, _ in counted],
            args=[COUNTER_TTL_SECONDS, *(n for _, n in counted)],
        )

    async def close(self) -> None:
        await self._redis.aclose()


def counter_store(
    db: Database, redis_url: str | None, redis_prefix: str = REDIS_PREFIX
) -> CounterStore:
    """Redis when a URL is configured (OFFERBASE_REDIS_URL), its keys under
    OFFERBASE_REDIS_PREFIX and the database's deployment id; else the SQL database."""
    if redis_url:

        async def namespace() -> str:
            return redis_namespace(redis_prefix, await deployment_id(db))

        return RedisCounterStore(redis_url, namespace=namespace)
    return SqlCounterStore(db)
