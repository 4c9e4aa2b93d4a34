"""Feedback feeds the caps: the interaction records of an Edge request, stored, and counted on
the impression, click and custom caps of the offers they show.

Which counters a record increments is the engine's (engine/feedback.py, pure); this module
does the I/O around it: the sandbox's snapshot, the profile key the decision path would use
(store.profiles.find_profile over the same identity map), the server's clock for the period
bucket (never the client's timestamp: a client cannot write into a past period), then

* records that increment something are inserted now (store.interactions.insert_counted): the
  insert says whether the record is new, and only new records count (a resent event counts
  once); with SQL counters in the same transaction, with Redis right after the commit;
* every other record goes to the queued writer, as before: the answer does not wait for it.

Counted at once, so the next decision on any worker (which reads the shared counters) sees it.
docs/decisioning.md, "Caps by event kind", says it for users.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offerbase.api.deps import Services
from offerbase.engine import FeedbackRecord, feedback_keys, may_count
from offerbase.engine.snapshot import Snapshot
from offerbase.store.interactions import InteractionEvent, insert_counted
from offerbase.store.profiles import find_profile
from offerbase.store.tenants import Sandbox


@dataclass(frozen=True, slots=True)
class EventFeedback:
    """One Edge event's interaction records, with what counting needs of the event."""

    xdm: Mapping[str, Any]  # bound as xEvent = [xdm] for custom caps
    identity_map: Mapping[str, Any]  # the event's identities, as the decision path merges them
    records: Sequence[InteractionEvent]


def _item_ids(record: InteractionEvent) -> list[str]:
    items = record.body.get("itemIds")
    return [i for i in items if isinstance(i, str)] if isinstance(items, list) else []


def _placement(record: InteractionEvent) -> str | None:
    placement = record.body.get("placementId")
    return placement if isinstance(placement, str) else None


async def _counted(
    services: Services, sandbox: Sandbox, snapshot: Snapshot, feedback: Sequence[EventFeedback]
) -> tuple[list[tuple[InteractionEvent, list[str]]], list[InteractionEvent]]:
    """(records with the counter keys they increment, records that increment nothing)."""
    now = services.clock()
    counted: list[tuple[InteractionEvent, list[str]]] = []
    queued: list[InteractionEvent] = []
    for event in feedback:
        profile: tuple[str | None, Any] | None = None  # read once per event, when needed
        for record in event.records:
            items = _item_ids(record)
            if not may_count(snapshot, items):
                queued.append(record)
                continue
            if profile is None:
                profile = await find_profile(services.db, sandbox, event.identity_map)
            keys = feedback_keys(
                snapshot,
                FeedbackRecord(record.type, _placement(record), items),
                event=event.xdm,
                profile_key=profile[0],
                profile=profile[1],
                now=now,
            )
            if keys:
                counted.append((record, keys))
            else:
                queued.append(record)
    return counted, queued


async def store_feedback(
    services: Services, sandbox: Sandbox, feedback: Sequence[EventFeedback]
) -> None:
    """Store the records of every event; count those that feed a cap (see the module)."""
    records = [record for event in feedback for record in event.records]
    if not records:
        return
    queued = records
    if any(_item_ids(record) for record in records):
        snapshot = await services.snapshots.get(sandbox)
        if snapshot.feedback_caps:
            counted, queued = await _counted(services, sandbox, snapshot, feedback)
            if counted:
                result = await insert_counted(services.db, services.counters, sandbox.pk, counted)
                queued = [*queued, *result.bad]  # the writer rejects (and counts) them
    writer = services.interactions
    if writer.durable:  # concurrent commits share one transaction
        await asyncio.gather(*(writer.commit(record) for record in queued))
        return
    for record in queued:
        writer.record(record)
