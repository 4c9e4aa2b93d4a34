"""Interaction events through the real entry points: recorded by the app's writer (as the Edge
routes do), read over HTTP (paged, signed cursors, `since`, `type`, NDJSON export, per sandbox)
and exported by `offerbase events export --type interaction`."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from typer.testing import CliRunner

from offerbase.api.edge_feedback import interaction_events
from offerbase.cli import app as cli
from offerbase.store import tenants

ODS = "/data/core/ods"


async def record(services: Any, tenant: Any, kind: str, event_id: str, *propositions: str) -> None:
    sandbox = await _sandbox(services, tenant)
    event = {
        "xdm": {
            "_id": event_id,
            "timestamp": "2026-12-01T06:30:08.976Z",
            "_experience": {
                "decisioning": {
                    "propositionEventType": {kind: 1},
                    "propositions": [{"id": p, "items": [{"id": "offer1"}]} for p in propositions],
                }
            },
        }
    }
    for found in interaction_events(
        event,
        sandbox_pk=sandbox.pk,
        datastream_id="ds-1",
        identity=("ECID", "2" * 38),
        identity_map={},
        received_at="2026-12-01T06:30:09.000Z",
        event_index=0,
        request_id="r-1",
    ):
        assert services.interactions.record(found)
    await services.interactions.flush()


async def test_interaction_events_are_listed_filtered_and_exported(client, tenant, services):  # type: ignore[no-untyped-def]
    await record(services, tenant, "display", "e-1", "p-1", "p-2")
    await record(services, tenant, "interact", "e-2", "p-1")
    await record(services, tenant, "interact", "e-2", "p-1")  # a resend: stored once
    listed = await client.get(f"{ODS}/interaction-events?limit=2", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert (page["count"], page["total"]) == (2, 3)
    assert [(e["eventId"], e["seq"], e["type"]) for e in page["results"]] == [
        ("e-1", 0, "display"),
        ("e-1", 1, "display"),
    ]
    assert page["results"][0]["itemIds"] == ["offer1"]
    second = await client.get(ODS + page["_links"]["next"]["href"], headers=tenant.headers)
    assert [e["eventId"] for e in second.json()["results"]] == ["e-2"]
    assert "next" not in second.json()["_links"]

    clicks = await client.get(f"{ODS}/interaction-events?type=interact", headers=tenant.headers)
    assert [e["eventId"] for e in clicks.json()["results"]] == ["e-2"]
    later = await client.get(
        f"{ODS}/interaction-events", params={"since": "2026-12-02"}, headers=tenant.headers
    )
    assert later.json()["total"] == 0

    export = await client.get(f"{ODS}/interaction-events/export", headers=tenant.headers)
    assert export.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [(e["eventId"], e["seq"]) for e in lines] == [("e-1", 0), ("e-1", 1), ("e-2", 0)]
    displays = await client.get(
        f"{ODS}/interaction-events/export?type=display", headers=tenant.headers
    )
    assert len(displays.text.splitlines()) == 2

    # The type filter is kept in the next link.
    paged = await client.get(
        f"{ODS}/interaction-events?type=display&limit=1", headers=tenant.headers
    )
    assert "type=display" in paged.json()["_links"]["next"]["href"]
    # Another sandbox sees none of them, and decision events are another list.
    other = await client.get(f"{ODS}/interaction-events", headers=tenant.in_sandbox("dev").headers)
    assert other.json()["total"] == 0
    decisions = await client.get(f"{ODS}/decision-events", headers=tenant.headers)
    assert decisions.json()["total"] == 0


async def test_bad_reads_are_400s_naming_the_parameter(client, tenant, services):  # type: ignore[no-untyped-def]
    await record(services, tenant, "display", "e-1", "p-1", "p-2")
    page = (await client.get(f"{ODS}/interaction-events?limit=1", headers=tenant.headers)).json()
    cursor = page["_links"]["next"]["href"].split("start=")[1]
    other = tenant.in_sandbox("dev").headers
    for url, headers, name in [
        (f"{ODS}/interaction-events?type=click", tenant.headers, "type"),
        (f"{ODS}/interaction-events/export?type=click", tenant.headers, "type"),
        (f"{ODS}/interaction-events?start=forged.AAAAAAAAAAAAAAAAAAAAAA", tenant.headers, "start"),
        (f"{ODS}/interaction-events?start={cursor}", other, "start"),  # another sandbox's
        (f"{ODS}/interaction-events?limit=0", tenant.headers, "limit"),
    ]:
        response = await client.get(url, headers=headers)
        assert response.status_code == 400, (url, response.text)
        assert [error["pointer"] for error in response.json()["errors"]] == [name], url
    # Authenticated like every Offer Decisioning read.
    for path in ("interaction-events", "interaction-events/export"):
        assert (await client.get(f"{ODS}/{path}")).status_code in (401, 403)


async def test_the_cli_exports_interaction_events(client, tenant, services):  # type: ignore[no-untyped-def]
    await record(services, tenant, "interact", "e-9", "p-9")
    saved = dict(os.environ)  # the CLI exports --database-url to the environment

    def export(*options: str) -> Any:
        arguments = ["events", "export", "--org", tenant.org, *options]
        return CliRunner().invoke(cli, [*arguments, "--database-url", services.db.url])

    try:
        clicks = await asyncio.to_thread(export, "--type", "interaction")
        decisions = await asyncio.to_thread(export)
        wrong = await asyncio.to_thread(export, "--type", "click")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert clicks.exit_code == 0, clicks.output
    [line] = clicks.output.splitlines()
    assert json.loads(line)["eventId"] == "e-9"
    assert (decisions.exit_code, decisions.output) == (0, "")  # decision events by default
    assert wrong.exit_code == 2


def _one_click(sandbox_pk: int, event_id: str) -> Any:
    [found] = interaction_events(
        {
            "xdm": {
                "_id": event_id,
                "_experience": {
                    "decisioning": {
                        "propositionEventType": {"interact": 1},
                        "propositions": [{"id": "p"}],
                    }
                },
            }
        },
        sandbox_pk=sandbox_pk,
        datastream_id="ds-1",
        identity=None,
        identity_map={},
        received_at="2026-12-01T06:30:09.000Z",
        event_index=0,
        request_id="r-1",
    )
    return found


async def _total(client: Any, tenant: Any) -> int:
    response = await client.get(f"{ODS}/interaction-events", headers=tenant.headers)
    return int(response.json()["total"])


@pytest.mark.parametrize("app_options", [{"events_durable": True}], indirect=True, ids=["durable"])
async def test_the_durable_setting_commits_interactions_too(client, tenant, services):  # type: ignore[no-untyped-def]
    assert services.interactions.durable
    sandbox = await _sandbox(services, tenant)
    await services.interactions.commit(_one_click(sandbox.pk, "e-1"))
    assert await _total(client, tenant) == 1  # no flush: committed


@pytest.mark.parametrize("app_options", [{}], indirect=True, ids=["own-app"])
async def test_graceful_shutdown_writes_queued_interactions(app, client, tenant, services):  # type: ignore[no-untyped-def]
    sandbox = await _sandbox(services, tenant)
    async with app.router.lifespan_context(app):
        assert not services.interactions.durable
        for index in range(3):
            assert services.interactions.record(_one_click(sandbox.pk, f"e-{index}"))
        assert await _total(client, tenant) == 0  # still queued
    assert await _total(client, tenant) == 3


async def _sandbox(services: Any, tenant: Any) -> Any:
    async with services.db.read() as conn:
        found = await tenants.get_sandbox(conn, tenant.org, tenant.sandbox)
    assert found is not None
    return found
