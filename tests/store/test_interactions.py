"""Interaction events on SQLite and PostgreSQL: written by the shared EventWriter, idempotent on
(sandbox, event id, seq), one row per proposition, durable mode, bad rows rejected alone."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from offerbase.api.edge_feedback import interaction_events
from offerbase.store import tenants
from offerbase.store.db import Database
from offerbase.store.interactions import InteractionEvent, InteractionEvents, interaction_writer
from offerbase.store.tenants import Sandbox


@pytest.fixture
async def sandbox(database: Database) -> Sandbox:
    async with database.write() as conn:
        return await tenants.ensure_sandbox(conn, f"{uuid.uuid4().hex}@AdobeOrg", "prod")


def click(sandbox: Sandbox, *proposition_ids: str, event_id: str = "e-1") -> list[InteractionEvent]:
    """What the Edge routes record for a click on `proposition_ids` (through edge_feedback)."""
    event: dict[str, Any] = {
        "xdm": {
            "_id": event_id,
            "eventType": "decisioning.propositionInteract",
            "timestamp": "2026-12-01T06:30:08.976Z",
            "_experience": {
                "decisioning": {
                    "propositionEventType": {"interact": 1},
                    "propositions": [
                        {"id": p, "scope": "s", "items": [{"id": "offer1"}]}
                        for p in proposition_ids
                    ],
                }
            },
        }
    }
    return interaction_events(
        event,
        sandbox_pk=sandbox.pk,
        datastream_id="ds-1",
        identity=("ECID", "1" * 38),
        identity_map={},
        received_at="2026-12-01T06:30:09.000Z",
        event_index=0,
        request_id="r-1",
    )


async def stored(database: Database, sandbox: Sandbox, **filters: Any) -> list[dict[str, Any]]:
    items, total, _ = await InteractionEvents(database, sandbox).page(1000, None, **filters)
    assert total == len(items)
    return items


async def test_the_same_event_twice_is_one_row(database: Database, sandbox: Sandbox) -> None:
    writer = interaction_writer(database)
    for record in click(sandbox, "p-1") * 2:  # twice in one batch
        assert writer.record(record)
    await writer.flush()
    for record in click(sandbox, "p-1"):  # and again in a later batch
        assert writer.record(record)
    await writer.flush()
    [row] = await stored(database, sandbox)
    assert (row["eventId"], row["propositionId"], row["type"]) == ("e-1", "p-1", "interact")
    assert row["identity"] == {"namespace": "ECID", "id": "1" * 38}


async def test_two_propositions_of_one_event_are_two_rows(
    database: Database, sandbox: Sandbox
) -> None:
    writer = interaction_writer(database)
    for record in click(sandbox, "p-1", "p-1") + click(sandbox, "p-2", event_id="e-2"):
        writer.record(record)
    await writer.flush()
    rows = await stored(database, sandbox)
    assert [(r["eventId"], r["seq"], r["propositionId"]) for r in rows] == [
        ("e-1", 0, "p-1"),
        ("e-1", 1, "p-1"),
        ("e-2", 0, "p-2"),
    ]


async def test_durable_mode_commits_before_it_returns(database: Database, sandbox: Sandbox) -> None:
    writer = interaction_writer(database, durable=True)
    [record] = click(sandbox, "p-1")
    await writer.commit(record)
    assert len(await stored(database, sandbox)) == 1
    await writer.commit(record)  # a resend: committed, and still one row
    assert len(await stored(database, sandbox)) == 1


async def test_a_bad_row_is_rejected_alone(database: Database, sandbox: Sandbox) -> None:
    writer = interaction_writer(database)
    [good] = click(sandbox, "p-1")
    [nul] = click(sandbox, "p-\x00")
    [gone] = click(sandbox, "p-3", event_id="e-3")
    gone = dataclasses.replace(gone, sandbox_pk=2**31 - 7)
    assert not writer.record(nul)  # refused when it is queued
    assert writer.record(gone)  # refused by the database (no such sandbox), on its own
    assert writer.record(good)
    await writer.flush()
    assert [r["propositionId"] for r in await stored(database, sandbox)] == ["p-1"]
    assert writer.rejected == 2


async def test_reads_filter_by_type_and_time_and_page_oldest_first(
    database: Database, sandbox: Sandbox
) -> None:
    writer = interaction_writer(database)
    for index in range(3):
        for record in click(sandbox, f"p-{index}", event_id=f"e-{index}"):
            writer.record(record)
    [display] = click(sandbox, "p-d", event_id="e-d")
    writer.record(
        InteractionEvent(
            sandbox.pk,
            display.event_id,
            0,
            "p-d",
            "2026-12-02T00:00:00.000Z",
            "display",
            {**display.body, "type": "display"},
        )
    )
    await writer.stop()
    reads = InteractionEvents(database, sandbox)
    first, total, cursor = await reads.page(2, None)
    assert ([r["eventId"] for r in first], total) == (["e-0", "e-1"], 4)
    rest, _, end = await reads.page(2, cursor)
    assert ([r["eventId"] for r in rest], end) == (["e-2", "e-d"], None)
    assert [r["eventId"] for r in await stored(database, sandbox, type="display")] == ["e-d"]
    assert len(await stored(database, sandbox, type="interact")) == 3
    assert [r["eventId"] for r in await stored(database, sandbox, since="2026-12-02")] == ["e-d"]
    exported = [r["eventId"] async for r in reads.export(type="interact")]
    assert exported == ["e-0", "e-1", "e-2"]
