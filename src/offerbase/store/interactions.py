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

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from offerbase.metrics import (
    INTERACTIONS_DROPPED,
    INTERACTIONS_REJECTED,
    INTERACTIONS_WRITTEN,
)
from offerbase.store.counters import CounterStore, SqlCounterStore
from offerbase.store.db import Database
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
from offerbase.store.rollups import interaction_rollup
from offerbase.store.scope import Scope, template, tenant_column
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
    rollup=interaction_rollup,
)


def interaction_writer(
    db: Database, *, durable: bool = False, **options: Any
) -> EventWriter[InteractionEvent]:
    """Services.interactions: record(event) queues, commit(event) waits for the commit."""
    return EventWriter(db, durable=durable, kind=INTERACTION_EVENTS, **options)


@cache  # one per dialect
def _insert_new(is_sqlite: bool) -> sa.Insert:
    """Insert one row unless its (sandbox, event id, seq) is stored; RETURNING says which."""
    t = interaction_events
    insert = sqlite.insert(t) if is_sqlite else postgresql.insert(t)
    stmt = insert.values(
        event_id=sa.bindparam("event_id"),
        seq=sa.bindparam("seq"),
        proposition_id=sa.bindparam("proposition_id"),
        timestamp=sa.bindparam("timestamp"),
        type=sa.bindparam("type"),
        body=sa.bindparam("body", type_=t.c.body.type),
    )
    return template(stmt.on_conflict_do_nothing(index_elements=list(_UNIQUE)).returning(t.c.seq))


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

    With the SQL counter store of this database, the inserts and the increments are one
    transaction (both or neither). With another store (Redis) the increments follow the commit:
    a crash between the two loses those counts (never counts twice). Raises the database's
    error when it is unavailable (nothing is counted then).
    """
    insert = _insert_new(db.is_sqlite)
    scope = Scope(sandbox_pk)
    bad: list[InteractionEvent] = []
    checked: list[tuple[InteractionEvent, Sequence[str]]] = []
    for record, keys in records:
        if record.sandbox_pk != sandbox_pk:
            raise ValueError("insert_counted: every record must be of the one sandbox")
        try:
            interaction_row(record)  # the writer's checks: sizes, NUL, serialisable
        except BadEvent:
            bad.append(record)
            continue
        checked.append((record, keys))
    if not checked:
        return Counted(0, bad)
    same_transaction = isinstance(counters, SqlCounterStore) and counters.db is db
    keys_of_new: list[str] = []
    new = 0
    # One lock order for every caller on PostgreSQL (event rows by key, then counters by key,
    # as try_consume locks them): two requests that share events or counters cannot deadlock.
    checked.sort(key=lambda counted: (counted[0].event_id, counted[0].seq))
    async with db.write() as conn:
        for record, keys in checked:
            params = scope.params(
                event_id=record.event_id,
                seq=record.seq,
                proposition_id=record.proposition_id,
                timestamp=record.timestamp,
                type=record.type,
                body=record.body,
            )
            if (await conn.execute(insert, params)).first() is not None:
                new += 1
                keys_of_new.extend(keys)
        if same_transaction and keys_of_new:
            assert isinstance(counters, SqlCounterStore)
            await counters.add_in(conn, sandbox_pk, keys_of_new)
    if not same_transaction and keys_of_new:
        await counters.add(sandbox_pk, keys_of_new)
    INTERACTIONS_WRITTEN.inc(new)
    return Counted(new, bad)


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
