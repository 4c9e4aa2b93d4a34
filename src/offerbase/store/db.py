"""Database engine: one async code path for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, Protocol

import asyncpg
import orjson
import sqlalchemy as sa
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from offerbase.config import Settings
from offerbase.store.scope import UnscopedTable, tenant_column

# What repositories take: the API passes connections through without knowing SQLAlchemy.
Connection = AsyncConnection


_NAMED = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


@lru_cache(maxsize=256)
def _numbering(sql: str) -> tuple[str, tuple[str, ...]]:
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAMED.sub(number, sql), tuple(names)


def _numbered(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """`:name` parameters (sqlite3's style) as asyncpg's `$1, $2, ...`."""
    query, names = _numbering(sql)
    return query, [params[name] for name in names]


def normalize_url(url: str) -> str:
    """Accept the plain URL forms operators usually have and pick the async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def printable_url(url: str) -> str:
    """A database URL as it may be printed or logged: without its password."""
    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def _create_private_file(url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600) before SQLite does with
    the umask's mode; SQLite gives its -wal and -shm files the database file's mode."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


Row = tuple[Any, ...]


class Batch(Protocol):
    """The transaction of one `Database.insert_rows` call, for the statements that must
    commit with its rows (the reports' rollups). Rows carry their tenant column, as in
    insert_rows: a batch holds rows of many sandboxes. Table and column names are the
    caller's constants, never input."""

    async def insert_new(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[Row], unique: tuple[str, ...]
    ) -> list[Row]:
        """Insert the rows whose `unique` key is not stored yet; returns those rows."""
        ...

    async def insert_all(self, table: sa.Table, columns: tuple[str, ...], rows: list[Row]) -> None:
        """Insert every row (rows known to be new: the AI ranking learner's queue)."""
        ...

    async def add(
        self, table: sa.Table, keys: tuple[str, ...], sums: tuple[str, ...], rows: list[Row]
    ) -> None:
        """Upsert rows of (keys..., sums...): a new key is inserted, an existing one gets each
        sum added. Rows are applied in key order (two batches lock rows in the same order)."""
        ...


BatchStep = Callable[[Batch, list[Row]], Awaitable[None]]


def _check_tenant(table: sa.Table, columns: tuple[str, ...]) -> None:
    if tenant_column(table).name not in columns:
        raise UnscopedTable(f"Rows for '{table.name}' must say which sandbox they belong to.")


def _upsert_sql(table: sa.Table, keys: tuple[str, ...], sums: tuple[str, ...], marks: str) -> str:
    names = ", ".join((*keys, *sums))
    added = ", ".join(f"{name} = {table.name}.{name} + excluded.{name}" for name in sums)
    return (
        f"INSERT INTO {table.name} ({names}) VALUES ({marks})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    )


class _SqliteBatch:
    """On the writer connection, inside its BEGIN IMMEDIATE (synchronous: microseconds a row)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def insert_new(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[Row], unique: tuple[str, ...]
    ) -> list[Row]:
        _check_tenant(table, columns)
        marks = ", ".join("?" for _ in columns)
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
            f" ON CONFLICT ({', '.join(unique)}) DO NOTHING"
        )
        # One statement per row: rowcount says whether this row was new (executemany's
        # total cannot say which).
        return [row for row in rows if self.conn.execute(sql, row).rowcount == 1]

    async def insert_all(self, table: sa.Table, columns: tuple[str, ...], rows: list[Row]) -> None:
        _check_tenant(table, columns)
        marks = ", ".join("?" for _ in columns)
        self.conn.executemany(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows
        )

    async def add(
        self, table: sa.Table, keys: tuple[str, ...], sums: tuple[str, ...], rows: list[Row]
    ) -> None:
        _check_tenant(table, keys)
        marks = ", ".join("?" for _ in (*keys, *sums))
        self.conn.executemany(_upsert_sql(table, keys, sums, marks), sorted(rows))


def _pg_array_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL array type that carries a column's values into unnest()."""
    if isinstance(column.type, sa.Integer):  # BigInteger and SmallInteger included
        return "bigint[]"
    return "text[]"  # strings, and JSON as its text (cast back below)


class _PgBatch:
    def __init__(self, conn: asyncpg.Connection | PoolConnectionProxy) -> None:
        self.conn = conn

    async def insert_new(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[Row], unique: tuple[str, ...]
    ) -> list[Row]:
        _check_tenant(table, columns)
        if not rows:
            return []
        # One statement for the batch: the rows as arrays, unnested; RETURNING names the
        # rows inserted (by their position), ON CONFLICT skips the others.
        arrays = ", ".join(
            f"${index + 1}::{_pg_array_type(table.c[name])}" for index, name in enumerate(columns)
        )
        values = ", ".join(
            f"u.{name}::jsonb" if isinstance(table.c[name].type, sa.JSON) else f"u.{name}"
            for name in columns
        )
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)})"
            f" SELECT {values} FROM unnest({arrays}, $"
            f"{len(columns) + 1}::bigint[]) AS u({', '.join(columns)}, position_)"
            f" ORDER BY u.position_"
            f" ON CONFLICT ({', '.join(unique)}) DO NOTHING RETURNING {', '.join(unique)}"
        )
        args = [list(column) for column in zip(*rows, strict=True)]
        args.append(list(range(len(rows))))
        returned = await self.conn.fetch(sql, *args)
        index = [columns.index(name) for name in unique]
        new = {tuple(record) for record in returned}
        inserted = []
        for row in rows:  # a key twice in the batch: its first row is the one inserted
            key = tuple(row[i] for i in index)
            if key in new:
                new.discard(key)
                inserted.append(row)
        return inserted

    async def insert_all(self, table: sa.Table, columns: tuple[str, ...], rows: list[Row]) -> None:
        _check_tenant(table, columns)
        if rows:
            await self.conn.copy_records_to_table(table.name, records=rows, columns=columns)

    async def add(
        self, table: sa.Table, keys: tuple[str, ...], sums: tuple[str, ...], rows: list[Row]
    ) -> None:
        _check_tenant(table, keys)
        if not rows:
            return
        marks = ", ".join(f"${index + 1}" for index in range(len(keys) + len(sums)))
        await self.conn.executemany(_upsert_sql(table, keys, sums, marks), sorted(rows))


class Database:
    """Owns the engine. Reads use `read()`, writes `write()`; both are one transaction."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "full") -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        # SQL parameters and rows are profile bodies and offer content: never in a log line,
        # whatever the log level (SQLAlchemy logs them at debug).
        # Bodies are read back with orjson, as requests are parsed: PostgreSQL's jsonb writes
        # the number 1e20 as 100000000000000000000, which Python's json reads as an int that no
        # JSON writer of ours can serialize (a stored profile then answered 500); orjson reads
        # an integer beyond 64 bits as the float it was sent as.
        kwargs: dict[str, Any] = {"hide_parameters": True, "json_deserializer": orjson.loads}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
            _create_private_file(self.url)
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self._reader: sqlite3.Connection | None = None
        self._pg_pool: asyncpg.Pool | None = None
        self._writer: sqlite3.Connection | None = None
        self.sqlite_synchronous = sqlite_synchronous
        if self.is_sqlite:
            self._configure_sqlite(sqlite_synchronous)

    @classmethod
    def for_settings(cls, settings: Settings) -> Database:
        return cls(settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous)

    def _configure_sqlite(self, synchronous: str) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(f"sqlite synchronous must be full or normal, not {synchronous!r}")

        @event.listens_for(self.engine.sync_engine, "connect")
        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" hook below emit BEGIN itself (pysqlite's own is too lazy).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Checkpoints run off the request path (`checkpoint()`, every second while the app
            # runs): an automatic one runs inside the commit that crosses the threshold and set
            # the p99 of writes (bench/catalog.py). A high threshold stays as a safety net.
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(self.engine.sync_engine, "begin")
        def on_begin(conn: sa.Connection) -> None:
            # Writers take the write lock up front: a deferred transaction that reads and then
            # writes can deadlock against another writer and fail with "database is locked".
            if conn.get_execution_options().get("immediate"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(immediate=True)
            async with conn.begin():
                yield conn

    async def point_read(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """A small indexed read for the hot path, as plain SQL with `:name` parameters.

        On SQLite it runs synchronously on the calling thread through the sqlite3 module: an
        indexed lookup costs microseconds, while aiosqlite's hand-offs to its worker thread
        (connect, begin, execute, fetch, rollback) cost far more than the query. WAL mode means
        a reader never waits for a writer, so this does not stall the event loop on a lock.
        """
        if self.is_sqlite:
            return self._sqlite_reader().execute(sql, params).fetchall()
        # PostgreSQL: straight to asyncpg (its own small pool), skipping SQLAlchemy's pool
        # checkout and result machinery, which cost more than the query on the hot path.
        query, args = _numbered(sql, params)
        pool = self._pg_pool or await self._open_pg_pool()
        return [tuple(row) for row in await pool.fetch(query, *args)]

    async def _open_pg_pool(self) -> asyncpg.Pool:
        if self._pg_pool is None:
            dsn = self.url.replace("postgresql+asyncpg://", "postgresql://", 1)
            # reset: by default asyncpg sends `RESET ALL; UNLISTEN *; ...` on every release,
            # a second round trip per read. This pool only runs single SELECTs (point_read),
            # which leave no session state behind; an open transaction is still rolled back.
            self._pg_pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=10, reset=_nothing_to_reset
            )
        return self._pg_pool

    def _sqlite_reader(self) -> sqlite3.Connection:
        if self._reader is None:
            path = self.url.split("///", 1)[1]
            self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._reader.execute("PRAGMA busy_timeout=5000")
            self._reader.execute("PRAGMA query_only=ON")
        return self._reader

    async def insert_rows(
        self,
        table: sa.Table,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        *,
        skip_duplicates_of: tuple[str, ...] | None = None,
        then: BatchStep | None = None,
    ) -> bool:
        """A batch insert that never stalls the event loop for long (decision events).
        Returns False when SQLite's write lock is taken: try again later. `columns` are the
        caller's constants, never input, and include the table's tenant column: each row says
        which sandbox it belongs to (store/scope.py).

        On SQLite it runs on the calling thread, but only if the write lock is free at once
        (no busy wait): inserting a few hundred rows costs about a millisecond, while a worker
        thread would fight the event loop for the GIL for longer (measured: p99 of decisions
        26 ms with a thread, 19 ms without). On PostgreSQL it is one binary COPY: one
        statement for the whole batch, where an INSERT per row cost the server (on the same
        cores as the workers) more than the decisions did.

        `skip_duplicates_of` (a unique key's columns, the caller's constants too) makes the
        insert idempotent: a row whose key is stored already is skipped, `INSERT ... ON
        CONFLICT (key) DO NOTHING` on both backends (interaction events; COPY cannot skip, so
        on PostgreSQL it is one prepared INSERT run for every row, all or nothing).

        `then(batch, inserted)` runs in the same transaction, after the insert, with the rows
        that were inserted (all of them, or with `skip_duplicates_of` only those not stored
        before): the reports' rollups (store/rollups.py), so a batch and its rollups commit
        together and a duplicate never counts.
        """
        if tenant_column(table).name not in columns:
            raise UnscopedTable(f"Rows for '{table.name}' must say which sandbox they belong to.")
        names = ", ".join(columns)
        skip = (
            f" ON CONFLICT ({', '.join(skip_duplicates_of)}) DO NOTHING"
            if skip_duplicates_of
            else ""
        )
        if not self.is_sqlite:
            pool = self._pg_pool or await self._open_pg_pool()
            if then is not None:
                async with pool.acquire() as conn, conn.transaction():
                    batch = _PgBatch(conn)
                    if skip_duplicates_of:
                        inserted = await batch.insert_new(table, columns, rows, skip_duplicates_of)
                    else:
                        await conn.copy_records_to_table(table.name, records=rows, columns=columns)
                        inserted = rows
                    await then(batch, inserted)
                return True
            async with pool.acquire() as conn:
                if skip:
                    numbered = ", ".join(f"${index + 1}" for index in range(len(columns)))
                    # asyncpg's executemany is atomic: a refused row fails the whole call.
                    await conn.executemany(
                        f"INSERT INTO {table.name} ({names}) VALUES ({numbered}){skip}", rows
                    )
                else:
                    await conn.copy_records_to_table(table.name, records=rows, columns=columns)
            return True
        if not self._begin_immediate():
            return False
        assert self._writer is not None
        marks = ", ".join("?" for _ in columns)
        try:
            if then is None:
                self._writer.executemany(
                    f"INSERT INTO {table.name} ({names}) VALUES ({marks}){skip}", rows
                )
            else:
                sqlite_batch = _SqliteBatch(self._writer)
                if skip_duplicates_of:
                    inserted = await sqlite_batch.insert_new(
                        table, columns, rows, skip_duplicates_of
                    )
                else:
                    self._writer.executemany(
                        f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows
                    )
                    inserted = rows
                await then(sqlite_batch, inserted)
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")
        return True

    def _begin_immediate(self) -> bool:
        """Begin a transaction on the SQLite writer connection, False if the lock is taken."""
        if self._writer is None:
            path = self.url.split("///", 1)[1]
            self._writer = sqlite3.connect(path, isolation_level=None, timeout=0)
            self._writer.execute(f"PRAGMA synchronous={self.sqlite_synchronous}")
            # As on every other connection: an event of a sandbox that is gone is refused
            # (and rejected on its own, store/events.py), on SQLite as on PostgreSQL.
            self._writer.execute("PRAGMA foreign_keys=ON")
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise
        return True

    async def in_batch(self, step: Callable[[Batch], Awaitable[None]]) -> bool:
        """`step(batch)` in a write transaction of its own, with the Batch that
        `insert_rows`' `then` gets (a batch job's rollups, store/rollups.py). Returns False
        when SQLite's write lock is taken: try again later."""
        if not self.is_sqlite:
            pool = self._pg_pool or await self._open_pg_pool()
            async with pool.acquire() as conn, conn.transaction():
                await step(_PgBatch(conn))
            return True
        if not self._begin_immediate():
            return False
        assert self._writer is not None
        try:
            await step(_SqliteBatch(self._writer))
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")
        return True

    async def refresh_statistics(self, tables: tuple[sa.Table, ...]) -> None:
        """PostgreSQL: ANALYZE `tables`, so the planner knows they hold rows; SQLite: nothing.

        A bulk load into tables that were never analyzed (autovacuum has not run yet, or is
        off) gets plans made for empty tables: a lookup of many identities then reads every
        identity of the namespace instead of probing the primary key for each, and the load
        slows down as the table grows. `tables` are the caller's constants; ANALYZE reads
        statistics, no tenant's rows leave the database.
        """
        if self.is_sqlite:
            return
        pool = self._pg_pool or await self._open_pg_pool()
        async with pool.acquire() as conn:
            await conn.execute("ANALYZE " + ", ".join(table.name for table in tables))

    async def ping(self) -> bool:
        """Does the database answer? (/health; load balancers call it often, so it is cheap.)"""
        try:
            await self.point_read("SELECT 1", {})
            return True
        except Exception:
            return False

    async def checkpoint(self) -> None:
        """SQLite: copy the WAL into the database file (PASSIVE: never blocks a writer)."""
        if not self.is_sqlite:
            return
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw.driver_connection is not None  # a live pooled connection has one
            await raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._pg_pool is not None:
            await self._pg_pool.close()
            self._pg_pool = None
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """See Database._open_pg_pool."""
