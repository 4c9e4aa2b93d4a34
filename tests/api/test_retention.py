"""Retention of raw events (OFFERBASE_EVENT_RETENTION_DAYS) and the Parquet export, through the
real entry points on SQLite and PostgreSQL: decisions through the Decisioning API, feedback
through the Edge, the server's pruning task (run by the app's lifespan, with a clock the test
moves), `offerbase events prune` and `offerbase events export --format ndjson|parquet`."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from decisioning_catalog import Catalog, criterion, decision_request
from typer.testing import CliRunner

import offerbase.store.parquet
from offerbase.cli import app as cli
from offerbase.store import tenants
from offerbase.store.clock import iso
from offerbase.store.events import PendingEvent

XDM_JSON = (
    'application/vnd.adobe.xdm+json; schema="https://ns.adobe.com/experience/offer-management/'
    'decision-request;version=1.0"'
)
ODS = "/data/core/ods"
# Inside the catalog's dates (2020-2040), and older than any other test's events but a few, so
# pruning here removes nothing another test is still looking at.
T0 = datetime(2021, 1, 1, 12, 0, tzinfo=UTC)  # the old events
T1 = T0 + timedelta(days=40)  # the recent ones, and "now" when pruning
RETENTION = 30  # days: T0 is older, T1 is not


@pytest.fixture
def now() -> dict[str, datetime]:
    """The clock of this module's apps: a test moves `now["now"]`."""
    return {"now": T0}


@pytest.fixture
def app_options(now: dict[str, datetime], request: pytest.FixtureRequest) -> dict[str, Any]:
    return {
        "clock": lambda: now["now"],
        "rng": random.Random(7),
        "snapshot_poll_seconds": 0,
        "event_retention_days": RETENTION,
        "event_prune_interval_seconds": 0.05,
        **getattr(request, "param", {}),
    }


async def catalog_and_datastream(client: Any, tenant: Any) -> str:
    catalog = Catalog(client, tenant)
    await catalog.placement("web")
    await catalog.offer("offer", ["web"], priority=1)
    await catalog.fallback("fb", ["web"])
    await catalog.collection("all", ["offer"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")
    response = await client.post("/data/core/edge/datastreams", json={}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def decide(client: Any, tenant: Any) -> None:
    headers = {**tenant.headers, "Content-Type": XDM_JSON}
    body = decision_request([("dec", "web")])
    response = await client.post(f"{ODS}/decisions", json=body, headers=headers)
    assert response.status_code == 200, response.text


async def display(client: Any, datastream: str, event_id: str, moment: datetime) -> None:
    """A display notification through the Edge, sent at `moment` (its xdm.timestamp)."""
    xdm = {
        "_id": event_id,
        "eventType": "decisioning.propositionDisplay",
        "timestamp": iso(moment),
        "_experience": {
            "decisioning": {
                "propositions": [{"id": f"p-{event_id}", "items": [{"id": "offer"}]}],
                "propositionEventType": {"display": 1},
            }
        },
    }
    response = await client.post(
        f"/ee/v1/interact?configId={datastream}",
        content=json.dumps({"events": [{"xdm": xdm}]}),
        headers={"Content-Type": "text/plain; charset=UTF-8"},
    )
    assert response.status_code == 200, response.text


async def totals(client: Any, tenant: Any) -> tuple[int, int]:
    """How many decision and interaction events the tenant has stored."""
    found = []
    for path in ("decision-events", "interaction-events"):
        response = await client.get(f"{ODS}/{path}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        found.append(int(response.json()["total"]))
    return found[0], found[1]


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for the pruning task: a generous deadline for a failure, never a timing assert."""
    for _ in range(600):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def old_and_recent(
    client: Any, services: Any, now: dict[str, datetime], *people: Any
) -> None:
    """For each tenant: 2 decisions and 2 displays at T0, 1 of each at T1 (the clock ends at T1)."""
    streams = [await catalog_and_datastream(client, person) for person in people]
    for person, stream in zip(people, streams, strict=True):
        for index in range(2):
            await decide(client, person)
            await display(client, stream, f"old-{index}", T0)
    now["now"] = T1
    for person, stream in zip(people, streams, strict=True):
        await decide(client, person)
        await display(client, stream, "new", T1)
    await services.events.flush()
    await services.interactions.flush()
    for person in people:
        assert await totals(client, person) == (3, 3)


async def test_the_server_prunes_old_events_of_every_tenant_and_keeps_recent_ones(  # type: ignore[no-untyped-def]
    app, client, tenant, other_tenant, services, now
):
    other = await other_tenant()
    await old_and_recent(client, services, now, tenant, other)
    async with app.router.lifespan_context(app):
        for person in (tenant, other):

            async def pruned(person: Any = person) -> bool:
                return await totals(client, person) == (1, 1)

            await until(pruned, f"{person.org}'s old events pruned")
    cutoff = iso(T1 - timedelta(days=RETENTION))
    for path in ("decision-events", "interaction-events"):
        kept = (await client.get(f"{ODS}/{path}", headers=tenant.headers)).json()["results"]
        times = [event.get("timestamp") or event["xdm:timestamp"] for event in kept]
        assert times == [iso(T1)]
        assert times[0] >= cutoff


@pytest.mark.parametrize("app_options", [{"event_retention_days": 0}], indirect=True)
async def test_a_retention_of_0_keeps_every_event(app, client, tenant, services, now):  # type: ignore[no-untyped-def]
    await old_and_recent(client, services, now, tenant)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.5)  # ten pruning intervals: nothing may be deleted meanwhile
    assert await totals(client, tenant) == (3, 3)


async def _sandbox(services: Any, tenant: Any) -> Any:
    async with services.db.read() as conn:
        found = await tenants.get_sandbox(conn, tenant.org, tenant.sandbox)
    assert found is not None
    return found


@pytest.mark.parametrize(
    "app_options", [{}, {"events_durable": True}], indirect=True, ids=["queued", "durable"]
)
async def test_decisions_never_fail_while_the_server_prunes(app, client, tenant, services, now):  # type: ignore[no-untyped-def]
    """Several batches of old events to delete while decisions run; durable events make every
    decision take SQLite's write lock, which pruning must never hold for long."""
    await catalog_and_datastream(client, tenant)
    sandbox = await _sandbox(services, tenant)
    old = iso(T0)
    for index in range(3500):  # four batches
        event = PendingEvent(sandbox.pk, f"old-{index}", old, {"xdm:timestamp": old})
        assert services.events.record(event)
    await services.events.flush()
    now["now"] = T1
    decided = 0
    async with app.router.lifespan_context(app):
        for _ in range(300):
            await asyncio.gather(*(decide(client, tenant) for _ in range(4)))  # each asserts 200
            decided += 4
            await services.events.flush()
            if await totals(client, tenant) == (decided, 0):
                break
    assert await totals(client, tenant) == (decided, 0)


def _cli(database_url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """`offerbase ARGS --database-url URL`, restoring the environment the CLI exports to."""
    saved = dict(os.environ)
    try:
        return CliRunner().invoke(cli, [*args, "--database-url", database_url], env=env)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _from_parquet(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row back as the exported record (docs/operations.md lists the mapping)."""
    extra = json.loads(row.pop("extra") or "{}")
    loads = lambda text: None if text is None else json.loads(text)  # noqa: E731
    if kind == "decision":
        record = {
            "xdm:propositionId": row["propositionId"],
            "xdm:timestamp": iso(row["timestamp"]),
            "xdm:decisionRequestId": row["decisionRequestId"],
            "xdm:identityMap": loads(row["identityMap"]),
            "xdm:propositions": loads(row["propositions"]),
        }
    else:
        namespace, identity = row.pop("identityNamespace"), row.pop("identityId")
        record = {
            **row,
            "timestamp": iso(row["timestamp"]),
            "receivedAt": iso(row["receivedAt"]),
            "identity": None if namespace is None else {"namespace": namespace, "id": identity},
            "action": loads(row["action"]),
        }
    return {**record, **extra}


async def test_the_cli_exports_parquet_with_the_rows_of_ndjson_and_prunes(  # type: ignore[no-untyped-def]
    client, tenant, services, now, tmp_path, monkeypatch
):
    await old_and_recent(client, services, now, tenant)
    url = services.db.url
    monkeypatch.setattr(offerbase.store.parquet, "ROW_GROUP_SIZE", 2)  # streamed in row groups
    for kind in ("decision", "interaction"):
        common = ["events", "export", "--org", tenant.org, "--type", kind]
        ndjson = await asyncio.to_thread(_cli, url, *common)
        assert ndjson.exit_code == 0, ndjson.output
        records = [json.loads(line) for line in ndjson.stdout.splitlines()]
        assert len(records) == 3
        path = tmp_path / f"{kind}.parquet"
        written = await asyncio.to_thread(
            _cli, url, *common, "--format", "parquet", "--output", str(path)
        )
        assert (written.exit_code, written.stdout) == (0, ""), written.output
        assert not (tmp_path / f"{kind}.parquet.partial").exists()
        assert pq.ParquetFile(path).metadata.num_row_groups == 2  # 2 + 1 rows
        table = pq.read_table(path)
        assert table.schema == offerbase.store.parquet.schema(kind)
        assert [_from_parquet(kind, row) for row in table.to_pylist()] == records
        # To a pipe or a file (stdout is not a terminal here): the same bytes' rows.
        piped = await asyncio.to_thread(_cli, url, *common, "--format", "parquet")
        assert piped.exit_code == 0, piped.output
        assert pq.read_table(pa.BufferReader(piped.stdout_bytes)).equals(table)
    # A typed column, for the warehouse: interaction events' item ids are a list of strings.
    assert (
        pq.read_table(tmp_path / "interaction.parquet").column("itemIds").to_pylist()
        == [["offer"]] * 3
    )

    # Prune what is older than T0 + 10 days (relative to today: the CLI uses the real clock).
    days = (datetime.now(UTC) - (T0 + timedelta(days=10))).days
    pruned = await asyncio.to_thread(
        _cli, url, "events", "prune", "--older-than-days", str(days), "--json"
    )
    assert pruned.exit_code == 0, pruned.output
    counts = json.loads(pruned.stdout)
    # Every sandbox's: at least this tenant's 2 + 2 (another test may have left older ones).
    assert counts["decisionEvents"] >= 2
    assert counts["interactionEvents"] >= 2
    assert await totals(client, tenant) == (1, 1)
    again = await asyncio.to_thread(_cli, url, "events", "prune", "--older-than-days", str(days))
    assert again.exit_code == 0, again.output
    assert "Deleted 0 decision events and 0 interaction events older than" in again.stdout
    off = await asyncio.to_thread(
        _cli, url, "events", "prune", env={"OFFERBASE_EVENT_RETENTION_DAYS": "0"}
    )
    assert "Retention is off" in off.stdout
    assert await totals(client, tenant) == (1, 1)


def test_parquet_is_not_written_to_a_terminal(tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "offerbase", "events", "export", "--org", "X@AdobeOrg"]
            + ["--format", "parquet", "--data-dir", str(tmp_path / "data")],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 1
    assert "Parquet is binary: give --output FILE" in done.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("value", ["-1", "36501", "ninety"])
def test_a_nonsense_retention_is_refused_with_its_name(value: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(
        cli,
        ["serve", "--data-dir", str(data_dir)],
        env={"OFFERBASE_EVENT_RETENTION_DAYS": value},
    )
    assert result.exit_code == 2, result.output
    assert "OFFERBASE_EVENT_RETENTION_DAYS: " in result.stderr
    assert repr(value) in result.stderr
    assert not data_dir.exists()
