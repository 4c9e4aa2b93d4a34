"""Decision events: recorded off the hot path in batches (or, in durable mode, committed before
the decision is answered), listed and exported per sandbox.

What can be lost, and when (docs/operations.md, "Decision events"):
- Queued mode (the default): events wait in memory, at most `MAX_QUEUED`, for a batch written
  every `interval`. A crash (or kill -9) loses what was queued: at most `interval` seconds of
  events while the database keeps up. A full queue drops new events (counted). A graceful
  shutdown writes the queue, for at most `SHUTDOWN_FLUSH_SECONDS`.
- Durable mode (OFFERBASE_EVENTS_DURABLE): a decision waits until its event is committed
  (concurrent decisions share one commit); a database that cannot take it fails the decision
  with 503, so an answered decision always has its event.
- Either way a bad record is rejected on its own: it is serialised and checked when it is
  queued, and a batch the database refuses is written again row by row, so one bad row never
  takes the rest of the batch (other tenants' events) with it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
import structlog

from offerbase.logs import RateLimitedErrors
from offerbase.metrics import EVENTS_DROPPED, EVENTS_REJECTED, EVENTS_WRITTEN
from offerbase.store.db import Database
from offerbase.store.errors import BadCursor
from offerbase.store.outages import unavailable
from offerbase.store.scope import Scope, tenant_column
from offerbase.store.tables import decision_events
from offerbase.store.tenants import Sandbox

log = structlog.get_logger("offerbase.events")
# A batch holds events of many sandboxes: each row carries its own in the tenant column.
_COLUMNS = (tenant_column(decision_events).name, "proposition_id", "timestamp", "body")
MAX_QUEUED = 100_000
# A graceful shutdown writes what is queued, but no longer than this (a database that is down
# would otherwise hold the shutdown forever); what is left is logged and counted as dropped.
SHUTDOWN_FLUSH_SECONDS = 10.0
# Durable mode: how long a decision waits for SQLite's write lock before it gives up (503).
DURABLE_LOCK_WAIT_SECONDS = 5.0

_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
Row = tuple[int, str, str, str]  # the tenant, proposition id, timestamp, body as JSON text


@dataclass(frozen=True)
class PendingEvent:
    sandbox_pk: int
    proposition_id: str
    timestamp: str
    body: dict[str, Any]


class BadEvent(ValueError):
    """An event that no database would store."""


def _has_nul(json_text: str) -> bool:
    r"""PostgreSQL's text and jsonb refuse the NUL character, even escaped in JSON: `\u0000`
    after an even number of backslashes (`\\u0000` is a backslash and text)."""
    return "\\u0000" in json_text and _JSON_NUL.search(json_text) is not None


def event_row(event: PendingEvent) -> Row:
    """The row to insert, serialised and checked now, so that a bad event fails on its own and
    at once instead of failing a whole batch later. Raises BadEvent."""
    try:
        body = orjson.dumps(event.body).decode()
    except orjson.JSONEncodeError as exc:
        raise BadEvent(f"The event body is not serialisable: {exc}") from exc
    if _has_nul(body) or "\x00" in event.proposition_id + event.timestamp:
        raise BadEvent("The event contains a NUL character.")
    if len(event.proposition_id) > 64 or len(event.timestamp) > 32:  # the columns' sizes
        raise BadEvent("The event's proposition id or timestamp is too long.")
    return (event.sandbox_pk, event.proposition_id, event.timestamp, body)


class _Interrupted(Exception):
    """The database is busy (SQLite's write lock; `cause` None) or unavailable: `remaining`
    are the rows not stored."""

    def __init__(self, remaining: list[Row], cause: Exception | None) -> None:
        super().__init__(str(cause))
        self.remaining = remaining
        self.cause = cause


class EventWriter:
    """Buffers events in memory and writes them in batches from a background task, so a
    decision never waits for its event to be stored; or, `durable`, commits each before the
    decision answers (`commit`)."""

    def __init__(
        self, db: Database, *, durable: bool = False, batch_size: int = 500, interval: float = 0.2
    ) -> None:
        self.db = db
        self.durable = durable
        self.batch_size = batch_size
        self.interval = interval
        self._queue: deque[Row] = deque()
        self._task: asyncio.Task[None] | None = None
        self._waiting: list[tuple[Row, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._errors = RateLimitedErrors(log)
        self.written = 0
        self.dropped = 0
        self.rejected = 0

    def _reject(self, reason: Exception) -> None:
        self.rejected += 1
        EVENTS_REJECTED.inc()
        self._errors.error((type(reason).__name__, str(reason)[:200]), "event rejected", reason)

    def _row(self, event: PendingEvent) -> Row | None:
        try:
            return event_row(event)
        except BadEvent as exc:
            self._reject(exc)
            return None

    def record(self, event: PendingEvent) -> bool:
        """Queue the event; False when it was rejected (bad) or dropped (the queue is full)."""
        row = self._row(event)
        if row is None:
            return False
        if len(self._queue) >= MAX_QUEUED:
            # Shedding events beats stalling decisions; the counter makes the loss visible.
            self.dropped += 1
            EVENTS_DROPPED.inc()
            return False
        self._queue.append(row)
        return True

    async def commit(self, event: PendingEvent) -> None:
        """Durable mode: return once the event is committed. Decisions arriving while a commit
        runs share the next one. Raises the database's error when it is unavailable."""
        row = self._row(event)
        if row is None:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        await future

    async def _commit_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            rows = [row for row, _ in batch]
            failure: Exception | None = None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DURABLE_LOCK_WAIT_SECONDS
            while rows:
                try:
                    await self._store(rows)
                    rows = []
                except _Interrupted as exc:
                    rows = exc.remaining
                    if exc.cause is not None or loop.time() >= deadline:
                        failure = exc.cause or TimeoutError("The database stayed locked.")
                        break
                    await asyncio.sleep(0.001)  # SQLite's write lock: taken for milliseconds
            # Rows stored before an interruption are committed; the decisions waiting on
            # them are answered all the same only if nothing failed (the safe side: a retried
            # decision records a second event rather than an answered one recording none).
            for _, future in batch:
                if future.done():  # the request went away meanwhile
                    continue
                if failure is None:
                    future.set_result(None)
                else:
                    future.set_exception(failure)

    async def _store(self, rows: list[Row]) -> None:
        """Insert `rows`; a row the database refuses is rejected on its own. Raises
        _Interrupted with the rows not stored when the database is busy or unavailable."""
        try:
            stored = await self.db.insert_rows(decision_events, _COLUMNS, rows)
        except Exception as exc:
            if unavailable(exc):
                raise _Interrupted(rows, exc) from exc
            if len(rows) == 1:
                self._reject(exc)
                return
            # One bad row failed the batch: write each on its own, so only it is lost.
            for index, row in enumerate(rows):
                try:
                    await self._store([row])
                except _Interrupted as interrupted:
                    raise _Interrupted(rows[index:], interrupted.cause) from interrupted.cause
            return
        if not stored:
            raise _Interrupted(rows, None)
        self.written += len(rows)
        EVENTS_WRITTEN.inc(len(rows))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._write_queued()
            except Exception as exc:  # keep the writer alive; the events are retried next round
                self._errors.error(
                    (type(exc).__name__, str(exc)[:200]), "writing decision events failed", exc
                )

    async def flush(self) -> int:
        """Write everything queued so far, waiting while the database is busy; returns how
        many events were written (shutdown and tests call this)."""
        before = self.written
        await self._write_queued()
        while self._queue:
            await asyncio.sleep(0.01)
            await self._write_queued()
        return self.written - before

    async def _write_queued(self) -> None:
        """One attempt: stops early (events kept, in order) when SQLite's write lock is taken;
        raises the database's error (events kept) when it is unavailable."""
        while self._queue:
            count = min(self.batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            try:
                await self._store(batch)
            except _Interrupted as exc:
                self._queue.extendleft(reversed(exc.remaining))
                if exc.cause is not None:
                    raise exc.cause from None
                return

    async def stop(self) -> None:
        """Graceful shutdown: stop the background task and write what is queued (bounded by
        SHUTDOWN_FLUSH_SECONDS); what cannot be written is logged and counted as dropped."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)
        try:
            await asyncio.wait_for(self.flush(), SHUTDOWN_FLUSH_SECONDS)
        except Exception as exc:
            lost = len(self._queue)
            self._queue.clear()
            self.dropped += lost
            EVENTS_DROPPED.inc(lost)
            log.error("decision events lost at shutdown", lost=lost, exc_info=exc)


def _encode(row_id: int) -> str:
    return base64.urlsafe_b64encode(str(row_id).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        row_id = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        if not 0 <= row_id < 2**63:  # a row id is a 64-bit column: past it, the SQL would fail
            raise ValueError(cursor)
        return row_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("The 'start' cursor is not one this server issued.") from exc


class DecisionEvents:
    """Reads of one sandbox's events, oldest first (events are append-only, so a row id
    cursor visits each exactly once)."""

    def __init__(self, db: Database, sandbox: Sandbox) -> None:
        self.db = db
        self.sandbox = sandbox
        self.scope = Scope.of(sandbox)

    async def page(
        self, limit: int, start: str | None, since: str | None = None
    ) -> tuple[list[dict[str, Any]], int, str | None]:
        where: list[sa.ColumnElement[bool]] = []
        if since:
            where.append(decision_events.c.timestamp >= since)
        count_where = list(where)
        if start:
            where.append(decision_events.c.row_id > _decode(start))
        async with self.db.read() as conn:
            count = sa.select(sa.func.count()).select_from(decision_events).where(*count_where)
            total = int(await conn.scalar(self.scope.apply(count)) or 0)
            query = (
                sa.select(decision_events.c.row_id, decision_events.c.body)
                .where(*where)
                .order_by(decision_events.c.row_id)
                .limit(limit + 1)
            )
            rows = (await conn.execute(self.scope.apply(query))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = _encode(rows[-1].row_id) if more and rows else None
        return [dict(row.body) for row in rows], total, cursor

    async def export(self, since: str | None = None) -> AsyncIterator[dict[str, Any]]:
        start: str | None = None
        while True:
            items, _total, start = await self.page(1000, start, since)
            for item in items:
                yield item
            if start is None:
                return
