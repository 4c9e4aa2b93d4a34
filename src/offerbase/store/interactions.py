"""Interaction events: display, click (interact), dismiss and custom feedback on propositions,
from the Edge endpoints (api/edge_feedback.py turns an Edge event into these records).

Written by store/events.py's EventWriter, with the same promises as decision events (queued
in batches, or committed before the answer in durable mode; a bad row rejected on its own; the
queue written at a graceful shutdown: docs/operations.md), and idempotently: a row whose
(sandbox, event id, seq) is stored already is skipped, so an event that a client sends again
(a retried beacon, a resent batch) counts once. Read per sandbox, oldest first, like decision
events, optionally of one type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from offerbase.metrics import (
    INTERACTIONS_DROPPED,
    INTERACTIONS_REJECTED,
    INTERACTIONS_WRITTEN,
)
from offerbase.store.db import Database
from offerbase.store.events import (
    EventKind,
    EventWriter,
    Page,
    Row,
    check_text,
    every_page,
    json_body,
    read_page,
)
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
)


def interaction_writer(
    db: Database, *, durable: bool = False, **options: Any
) -> EventWriter[InteractionEvent]:
    """Services.interactions: record(event) queues, commit(event) waits for the commit."""
    return EventWriter(db, durable=durable, kind=INTERACTION_EVENTS, **options)


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
