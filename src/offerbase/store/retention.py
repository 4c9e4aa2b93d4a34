"""Retention of raw events: decision and interaction events older than the retention
(OFFERBASE_EVENT_RETENTION_DAYS) are deleted, in small batches, off the hot path.

Only the two raw event tables are touched: rollups (reports) and everything else are kept.
An event's age is its `timestamp` column (ISO-8601 UTC with milliseconds, which orders
lexically like time). Pruning spans every sandbox, but each statement is one sandbox's: the
sandboxes are listed through the tenant directory (tenants.list_sandboxes, which spans tenants
by design) and every select and delete is scoped (store/scope.py), so it walks the
(sandbox_pk, timestamp, row_id) index of each table instead of scanning a whole table.

A batch is two short statements: read the row ids of at most `batch_size` old rows (a read,
no lock), then delete those rows, checking the cutoff again. Concurrent pruners (one per
worker, on any host) are harmless: the second delete of a row deletes nothing, and a row is
deleted only when it is older than the cutoff either way. A pause between batches lets
decisions and the event writers take SQLite's write lock in between; on PostgreSQL a batch
locks only its own rows, which nothing else writes (events are append-only).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from offerbase.metrics import EVENTS_PRUNED
from offerbase.store.clock import iso
from offerbase.store.db import Database
from offerbase.store.scope import Scope
from offerbase.store.tables import decision_events, interaction_events
from offerbase.store.tenants import list_sandboxes

# Rows per DELETE: a statement of this size takes milliseconds, so SQLite's single write lock
# is never held for long; and a row id list of this length stays under every driver's limit
# of bound parameters (SQLite 32,766, asyncpg 32,767).
BATCH_SIZE = 1000
# Between two batches: the write lock is free for the writers of the hot path.
BATCH_PAUSE_SECONDS = 0.05
EVENT_TABLES = (decision_events, interaction_events)


@dataclass(frozen=True)
class Pruned:
    """How many rows one pruning run deleted, per table."""

    decision_events: int = 0
    interaction_events: int = 0

    @property
    def total(self) -> int:
        return self.decision_events + self.interaction_events


def cutoff(now: datetime, days: int) -> str:
    """The stored timestamp before which an event is older than `days` days at `now`."""
    return iso(now - timedelta(days=days))


async def prune_events(
    db: Database,
    older_than: str,
    *,
    batch_size: int = BATCH_SIZE,
    pause: float = BATCH_PAUSE_SECONDS,
) -> Pruned:
    """Delete every decision and interaction event, of every sandbox, whose timestamp is
    before `older_than` (a stored timestamp, see `cutoff`). Returns how many were deleted."""
    async with db.read() as conn:
        sandbox_pks = [sandbox.pk for sandbox in await list_sandboxes(conn)]
    counts = {table.name: 0 for table in EVENT_TABLES}
    for table in EVENT_TABLES:
        for pk in sandbox_pks:
            deleted = await _prune_sandbox(db, Scope(pk), table, older_than, batch_size, pause)
            counts[table.name] += deleted
            EVENTS_PRUNED.labels(table.name).inc(deleted)
    return Pruned(**counts)


async def _prune_sandbox(
    db: Database, scope: Scope, table: sa.Table, older_than: str, batch_size: int, pause: float
) -> int:
    deleted = 0
    old = table.c.timestamp < older_than
    while True:  # ends: each round deletes rows or finds fewer than a batch
        query = sa.select(table.c.row_id).where(old).order_by(table.c.timestamp).limit(batch_size)
        async with db.read() as conn:
            row_ids = list((await conn.scalars(scope.apply(query))).all())
        if not row_ids:
            return deleted
        delete = sa.delete(table).where(table.c.row_id.in_(row_ids), old)
        async with db.write() as conn:
            result = await conn.execute(scope.apply(delete))
        deleted += result.rowcount or 0
        if len(row_ids) < batch_size:
            return deleted
        await asyncio.sleep(pause)
