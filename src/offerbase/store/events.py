"""Decision events: recorded off the hot path in batches, listed and exported per sandbox."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from offerbase.metrics import EVENTS_DROPPED, EVENTS_WRITTEN
from offerbase.store.db import Database
from offerbase.store.errors import BadCursor
from offerbase.store.scope import Scope, tenant_column
from offerbase.store.tables import decision_events
from offerbase.store.tenants import Sandbox

log = logging.getLogger(__name__)
# A batch holds events of many sandboxes: each row carries its own in the tenant column.
_COLUMNS = (tenant_column(decision_events).name, "proposition_id", "timestamp", "body")


@dataclass(frozen=True)
class PendingEvent:
    sandbox_pk: int
    proposition_id: str
    timestamp: str
    body: dict[str, Any]


class EventWriter:
    """Buffers events in memory and writes them in batches from a background task, so a
    decision never waits for its event to be stored."""

    def __init__(self, db: Database, *, batch_size: int = 500, interval: float = 0.2) -> None:
        self.db = db
        self.batch_size = batch_size
        self.interval = interval
        self._queue: asyncio.Queue[PendingEvent] = asyncio.Queue(maxsize=100_000)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def record(self, event: PendingEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # Shedding events beats stalling decisions; the counter makes the loss visible.
            self.dropped += 1
            EVENTS_DROPPED.inc()

    def _requeue(self, batch: list[PendingEvent]) -> None:
        for event in batch:
            self.record(event)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._write_queued()
            except Exception:  # keep the writer alive; the batch is retried next round
                log.exception("writing decision events failed")

    async def flush(self) -> int:
        """Write everything queued so far, waiting while the database is busy; returns how
        many events were written (shutdown and tests call this)."""
        written = await self._write_queued()
        while not self._queue.empty():
            await asyncio.sleep(0.01)
            written += await self._write_queued()
        return written

    async def _write_queued(self) -> int:
        """One attempt: stops early (events kept) when SQLite's write lock is taken."""
        written = 0
        while not self._queue.empty():
            batch: list[PendingEvent] = []
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            rows = [
                (e.sandbox_pk, e.proposition_id, e.timestamp, orjson.dumps(e.body).decode())
                for e in batch
            ]
            try:
                stored = await self.db.insert_rows(decision_events, _COLUMNS, rows)
            except Exception:
                self._requeue(batch)
                raise
            if not stored:  # the database is busy writing: keep the batch for the next round
                self._requeue(batch)
                return written
            EVENTS_WRITTEN.inc(len(batch))
            written += len(batch)
        return written

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()


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
