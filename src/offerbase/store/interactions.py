"""Interaction events: display, click (interact), dismiss and custom feedback on propositions,
from the Edge endpoints (api/edge_feedback.py turns an Edge event into these records).

Written by store/events.py's EventWriter, with the same promises as decision events (queued
in batches, or committed before the answer in durable mode; a bad row rejected on its own; the
queue written at a graceful shutdown: docs/operations.md), and idempotently: a row whose
(sandbox, event id, seq) is stored already is skipped, so an event that a client sends again
(a retried beacon, a resent batch) counts once. Read per sandbox, oldest first, like decision
events, optionally of one type.

Records that feed capping counters (impression, click and custom caps: engine/feedback.py) do
not wait for the writer: `insert_counted` inserts them at once, and the insert's answer (was
the row new?) decides whether they count, so an event sent twice is counted once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from offerbase.metrics import (
    INTERACTIONS_DROPPED,
    INTERACTIONS_REJECTED,
    INTERACTIONS_WRITTEN,
)
from offerbase.store.counters import CounterStore
from offerbase.store.db import Batch, Database
from offerbase.store.events import (
    BadEvent,
    EventKind,
    EventWriter,
    Page,
    Row,
    check_text,
    every_page,
    json_body,
    read_page,
)
from offerbase.store.ranking import enqueue as enqueue_for_ranking
from offerbase.store.rollups import interaction_rollup
from offerbase.store.scope import Scope, tenant_column
from offerbase.store.tables import interaction_events
from offerbase.store.tenants import Sandbox

# The `type` column: the key of `propositionEventType` set to 1, or "custom" when none is.
INTERACTION_TYPES = ("display", "interact", "dismiss", "trigger", "suppressDisplay", "custom")
_COLUMNS = (
    tenant_column(interaction_events).name,
    "event_id",
    "seq",
    "proposition_id",
    "timestamp",
    "type",
    "body",
)
_UNIQUE = (tenant_column(interaction_events).name, "event_id", "seq")


@dataclass(frozen=True)
class InteractionEvent:
    sandbox_pk: int
    event_id: str
    seq: int  # the proposition's position in its event
    proposition_id: str
    timestamp: str  # ISO-8601 ms Z: the event's xdm.timestamp if valid, else when it arrived
    type: str  # one of INTERACTION_TYPES
    body: dict[str, Any]  # the exported record (docs/edge.md, "Feedback events")


async def after_insert(batch: Batch, rows: list[Row]) -> None:
    """What commits with the interaction rows just inserted (new ones only): the reports'
    rollups, and the AI ranking learner's queue (store/ranking.py)."""
    await interaction_rollup(batch, rows)
    await enqueue_for_ranking(batch, rows)


def interaction_row(event: InteractionEvent) -> Row:
    """The row to insert, checked now (store/events.py's event_row). Raises BadEvent."""
    body = json_body(event.body)
    check_text(  # the columns' sizes
        event_id=(event.event_id, 255),
        proposition_id=(event.proposition_id, 255),
        timestamp=(event.timestamp, 32),
        type=(event.type, 64),
    )
    return (
        event.sandbox_pk,
        event.event_id,
        event.seq,
        event.proposition_id,
        event.timestamp,
        event.type,
        body,
    )


INTERACTION_EVENTS: EventKind[InteractionEvent] = EventKind(
    "interaction events",
    interaction_events,
    _COLUMNS,
    interaction_row,
    INTERACTIONS_WRITTEN,
    INTERACTIONS_DROPPED,
    INTERACTIONS_REJECTED,
    unique=_UNIQUE,
    rollup=after_insert,
)


def interaction_writer(
    db: Database, *, durable: bool = False, **options: Any
) -> EventWriter[InteractionEvent]:
    """Services.interactions: record(event) queues, commit(event) waits for the commit."""
    return EventWriter(db, durable=durable, kind=INTERACTION_EVENTS, **options)


# How long a counted event waits for SQLite's write lock before the request gives up (503).
COUNTED_LOCK_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Counted:
    """What `insert_counted` did: how many records were new (and counted), and the records
    no database would store (for the writer to reject and count, like any bad event)."""

    new: int
    bad: list[InteractionEvent]


async def insert_counted(
    db: Database,
    counters: CounterStore,
    sandbox_pk: int,
    records: Sequence[tuple[InteractionEvent, Sequence[str]]],
) -> Counted:
    """Store each record of one sandbox now, unless it is stored already, and add 1 to its
    counter keys only if it was new: an event sent twice counts once.

    The rows go in as the writer's do (`Database.insert_rows`, skipping stored keys), with the
    reports' rollups in the same transaction, so a counted display is in the reports too. The
    counters are incremented after that commit: a crash between the two loses those counts
    (an event is never counted twice). Raises the database's error when it is unavailable, and
    TimeoutError when SQLite's write lock stays taken (nothing is counted then).
    """
    bad: list[InteractionEvent] = []
    rows: list[Row] = []
    keys_by_row: dict[tuple[str, int], Sequence[str]] = {}
    for record, keys in records:
        if record.sandbox_pk != sandbox_pk:
            raise ValueError("insert_counted: every record must be of the one sandbox")
        try:
            row = interaction_row(record)  # the writer's checks: sizes, NUL, serialisable
        except BadEvent:
            bad.append(record)
            continue
        rows.append(row)
        keys_by_row[(record.event_id, record.seq)] = keys
    if not rows:
        return Counted(0, bad)
    # One lock order for every caller on PostgreSQL (event rows by key): two requests that
    # share events cannot deadlock.
    rows.sort(key=lambda row: (row[1], row[2]))
    inserted: list[Row] = []

    async def then(batch: Batch, new_rows: list[Row]) -> None:
        inserted[:] = new_rows
        await after_insert(batch, new_rows)

    deadline = time.monotonic() + COUNTED_LOCK_WAIT_SECONDS
    while not await db.insert_rows(
        interaction_events, _COLUMNS, rows, skip_duplicates_of=_UNIQUE, then=then
    ):
        if time.monotonic() >= deadline:  # SQLite's write lock: taken for milliseconds
            raise TimeoutError("The database stayed locked.")
        await asyncio.sleep(0.001)
    keys_of_new = [key for row in inserted for key in keys_by_row[(row[1], row[2])]]
    if keys_of_new:
        await counters.add(sandbox_pk, keys_of_new)
    INTERACTIONS_WRITTEN.inc(len(inserted))
    return Counted(len(inserted), bad)


class InteractionEvents:
    """Reads of one sandbox's interaction events, oldest first, optionally of one type."""

    def __init__(self, db: Database, sandbox: Sandbox) -> None:
        self.db = db
        self.sandbox = sandbox
        self.scope = Scope.of(sandbox)

    async def page(
        self,
        limit: int,
        start: str | None,
        since: str | None = None,
        type: str | None = None,
    ) -> Page:
        where: list[sa.ColumnElement[bool]] = []
        if since:
            where.append(interaction_events.c.timestamp >= since)
        if type:
            where.append(interaction_events.c.type == type)
        return await read_page(self.db, self.scope, interaction_events, where, limit, start)

    async def export(
        self,
        since: str | None = None,
        type: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        async for event in every_page(lambda limit, start: self.page(limit, start, since, type)):
            yield event
