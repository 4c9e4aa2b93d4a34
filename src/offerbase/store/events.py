"""Decision events: recorded off the hot path in batches (or, in durable mode, committed before
the decision is answered), listed and exported per sandbox. The writer and the paged reads are
shared with interaction events (store/interactions.py): an `EventKind` says which table, which
columns and how an event becomes a row.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
import structlog
from prometheus_client import Counter

from offerbase.logs import RateLimitedErrors
from offerbase.metrics import EVENTS_DROPPED, EVENTS_REJECTED, EVENTS_WRITTEN
from offerbase.store.db import BatchStep, Database
from offerbase.store.errors import BadCursor
from offerbase.store.outages import unavailable
from offerbase.store.rollups import decision_rollup
from offerbase.store.scope import Scope, tenant_column
from offerbase.store.tables import decision_events
from offerbase.store.tenants import Sandbox

log = structlog.get_logger("offerbase.events")
MAX_QUEUED = 100_000
# A graceful shutdown writes what is queued, but no longer than this (a database that is down
# would otherwise hold the shutdown forever); what is left is logged and counted as dropped.
SHUTDOWN_FLUSH_SECONDS = 10.0
# Durable mode: how long a decision waits for SQLite's write lock before it gives up (503).
DURABLE_LOCK_WAIT_SECONDS = 5.0

_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
Row = tuple[Any, ...]  # the values of an EventKind's columns, the body as JSON text
E = TypeVar("E")


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


def json_body(body: dict[str, Any]) -> str:
    """An event's body as the JSON text to store. Raises BadEvent."""
    try:
        text = orjson.dumps(body).decode()
    except orjson.JSONEncodeError as exc:
        raise BadEvent(f"The event body is not serialisable: {exc}") from exc
    if _has_nul(text):
        raise BadEvent("The event contains a NUL character.")
    return text


def check_text(**fields: tuple[str, int]) -> None:
    """Each text column's value fits its column (name=(value, size)) and has no NUL, which
    PostgreSQL refuses. Raises BadEvent."""
    for name, (value, size) in fields.items():
        if "\x00" in value:
            raise BadEvent("The event contains a NUL character.")
        if len(value) > size:
            raise BadEvent(f"The event's {name} is too long.")


def event_row(event: PendingEvent) -> Row:
    """The row to insert, serialised and checked now, so that a bad event fails on its own and
    at once instead of failing a whole batch later. Raises BadEvent."""
    body = json_body(event.body)
    # the columns' sizes
    check_text(proposition_id=(event.proposition_id, 64), timestamp=(event.timestamp, 32))
    return (event.sandbox_pk, event.proposition_id, event.timestamp, body)


@dataclass(frozen=True)
class EventKind(Generic[E]):
    """What an EventWriter stores: which table, which columns (the tenant column included: a
    batch holds events of many sandboxes, each row carries its own), how an event becomes a
    row, and the metrics that count it."""

    label: str  # "decision events", in log lines
    table: sa.Table
    columns: tuple[str, ...]
    row: Callable[[E], Row]
    written: Counter
    dropped: Counter
    rejected: Counter
    # Idempotent kinds: a row whose unique key (these columns) is stored already is skipped.
    unique: tuple[str, ...] | None = None
    # Run in each batch's transaction with the rows inserted (the reports' rollups).
    rollup: BatchStep | None = None


DECISION_EVENTS: EventKind[PendingEvent] = EventKind(
    "decision events",
    decision_events,
    (tenant_column(decision_events).name, "proposition_id", "timestamp", "body"),
    event_row,
    EVENTS_WRITTEN,
    EVENTS_DROPPED,
    EVENTS_REJECTED,
    rollup=decision_rollup,
)


class _Interrupted(Exception):
    """The database is busy (SQLite's write lock; `cause` None) or unavailable: `remaining`
    are the rows not stored."""

    def __init__(self, remaining: list[Row], cause: Exception | None) -> None:
        super().__init__(str(cause))
        self.remaining = remaining
        self.cause = cause


class EventWriter(Generic[E]):
    """Buffers events in memory and writes them in batches from a background task, so a
    decision never waits for its event to be stored; or, `durable`, commits each before the
    decision answers (`commit`). Decision events unless `kind` says otherwise."""

    def __init__(
        self,
        db: Database,
        *,
        durable: bool = False,
        batch_size: int = 500,
        interval: float = 0.2,
        kind: EventKind[Any] = DECISION_EVENTS,
    ) -> None:
        self.db = db
        self.kind = kind
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
        self.kind.rejected.inc()
        self._errors.error((type(reason).__name__, str(reason)[:200]), "event rejected", reason)

    def _row(self, event: E) -> Row | None:
        try:
            return self.kind.row(event)
        except BadEvent as exc:
            self._reject(exc)
            return None

    def record(self, event: E) -> bool:
        """Queue the event; False when it was rejected (bad) or dropped (the queue is full)."""
        row = self._row(event)
        if row is None:
            return False
        if len(self._queue) >= MAX_QUEUED:
            # Shedding events beats stalling decisions; the counter makes the loss visible.
            self.dropped += 1
            self.kind.dropped.inc()
            return False
        self._queue.append(row)
        return True

    async def commit(self, event: E) -> None:
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
            kind = self.kind
            stored = await self.db.insert_rows(
                kind.table, kind.columns, rows, skip_duplicates_of=kind.unique, then=kind.rollup
            )
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
        self.kind.written.inc(len(rows))

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
                    (type(exc).__name__, str(exc)[:200]), f"writing {self.kind.label} failed", exc
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
            self.kind.dropped.inc(lost)
            log.error(f"{self.kind.label} lost at shutdown", lost=lost, exc_info=exc)


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


async def read_page(
    db: Database,
    scope: Scope,
    table: sa.Table,
    where: list[sa.ColumnElement[bool]],
    limit: int,
    start: str | None,
) -> Page:
    """One page of an append-only event table (decision or interaction events), oldest first:
    the bodies, how many rows `where` matches, and the cursor of the next page. A row id
    cursor visits each row exactly once."""
    count_where = list(where)
    if start:
        where = [*where, table.c.row_id > _decode(start)]
    async with db.read() as conn:
        count = sa.select(sa.func.count()).select_from(table).where(*count_where)
        total = int(await conn.scalar(scope.apply(count)) or 0)
        query = (
            sa.select(table.c.row_id, table.c.body)
            .where(*where)
            .order_by(table.c.row_id)
            .limit(limit + 1)
        )
        rows = (await conn.execute(scope.apply(query))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = _encode(rows[-1].row_id) if more and rows else None
    return [dict(row.body) for row in rows], total, cursor


EXPORT_PAGE = 1000
Page = tuple[list[dict[str, Any]], int, str | None]


async def every_page(
    page: Callable[[int, str | None], Awaitable[Page]],
) -> AsyncIterator[dict[str, Any]]:
    """Every event that `page(limit, start)` reaches, page after page (the exports)."""
    start: str | None = None
    while True:
        items, _total, start = await page(EXPORT_PAGE, start)
        for item in items:
            yield item
        if start is None:
            return


class DecisionEvents:
    """Reads of one sandbox's events, oldest first (events are append-only, so a row id
    cursor visits each exactly once)."""

    def __init__(self, db: Database, sandbox: Sandbox) -> None:
        self.db = db
        self.sandbox = sandbox
        self.scope = Scope.of(sandbox)

    async def page(self, limit: int, start: str | None, since: str | None = None) -> Page:
        where = [decision_events.c.timestamp >= since] if since else []
        return await read_page(self.db, self.scope, decision_events, where, limit, start)

    async def export(self, since: str | None = None) -> AsyncIterator[dict[str, Any]]:
        async for event in every_page(lambda limit, start: self.page(limit, start, since)):
            yield event
