"""Offer reports at scale, and their freshness (issue 12).

Run by hand:

    .venv/bin/python bench/reports.py [--database-url postgresql+asyncpg://...] \
        [--events 10000000] [--runs 5] [--samples 20] [--no-freshness] [--check 20000] \
        [--real-path]

Scale: a fresh database (SQLite in a temporary directory, or a fresh PostgreSQL database on
the server of --database-url) gets --events stored events over 35 days: half decision events
(5 activities x 2 placements, 50 offers, 1 in 20 with a capped option), 40% displays, 5%
clicks, 5% custom events, from 500,000 visitors. By default they are stored by the bulk fill:
the raw rows by Database.insert_rows (COPY on PostgreSQL) without the writer's duplicate check
(every event id is new), and the rollups computed by the real rollup functions
(store/rollups.py) over the writer's batches of 5,000, in memory, then inserted once. Before
that, --check events are stored both ways (bulk fill, and the writer's path: insert_rows with
the rollups in each batch's transaction) into two more fresh databases, and every rollup table
must hold the same rows. --real-path fills through the writer's path instead (about 1,500
events/s measured on a loaded machine: hours for 10 million). Then the report of the last 30
days grouped by offer and day (store/reports.report, as the endpoint calls it) runs --runs
times; the median is the verdict (< 1 s). The same with uniqueTotals, and grouped by offer
only (COUNT(DISTINCT) over the uniques table), are printed beside it.

Freshness, on the same database (so with --events stored events): a real `offerbase serve`
gets display events on /ee/v1/interact, one at a time; after each, the report is polled every
20 ms until it counts the display. The worst of --samples is the verdict (< 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from offerbase.store import reports, tenants
from offerbase.store.db import Database, Row
from offerbase.store.events import DECISION_EVENTS, PendingEvent
from offerbase.store.interactions import INTERACTION_EVENTS, InteractionEvent
from offerbase.store.migrate import upgrade
from offerbase.store.rollups import decision_rollup, interaction_rollup
from offerbase.store.tables import (
    decision_events,
    interaction_events,
    report_conversions,
    report_offer_day_uniques,
    report_offer_days,
    report_offer_uniques,
    report_propositions,
    report_uniques,
)
from pgdb import fresh_database
from serving import auth_headers, free_port, machine, start_server, stop_server

BATCH = 5_000
DAYS = 35
VISITORS = 500_000
ACTIVITIES = [f"dps:offer-activity:{i}" for i in range(5)]
PLACEMENTS = [f"dps:offer-placement:{i}" for i in range(2)]
OFFERS = [f"dps:personalized-offer:{i}" for i in range(50)]
ROLLUP_TABLES = (
    report_offer_days,
    report_conversions,
    report_propositions,
    report_uniques,
    report_offer_uniques,
    report_offer_day_uniques,
)


def _event(i: int, rng: random.Random, sandbox_pk: int, today: datetime) -> tuple[str, object]:
    """The i-th event: ("decision", PendingEvent) or ("interaction", InteractionEvent)."""
    moment = today - timedelta(days=DAYS) + timedelta(seconds=rng.random() * DAYS * 86400)
    timestamp = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    activity, placement = rng.choice(ACTIVITIES), rng.choice(PLACEMENTS)
    offer = rng.choice(OFFERS)
    proposition_id = str(uuid.UUID(int=rng.getrandbits(128)))
    kind = i % 20
    if kind < 10:
        item = {
            "xdm:activity": {"xdm:id": activity},
            "xdm:placement": {"xdm:id": placement},
            "xdm:selections": [{"xdm:id": offer}],
        }
        if kind == 0:
            item["offerbase:cappedOptions"] = [rng.choice(OFFERS)]
        body = {
            "xdm:propositionId": proposition_id,
            "xdm:timestamp": timestamp,
            "xdm:identityMap": {"ECID": [{"xdm:id": str(rng.randrange(VISITORS))}]},
            "xdm:propositions": [item],
        }
        return "decision", PendingEvent(sandbox_pk, proposition_id, timestamp, body)
    event_type = "display" if kind < 18 else "interact" if kind == 18 else "custom"
    event_id = uuid.UUID(int=rng.getrandbits(128)).hex
    record = {
        "eventId": event_id,
        "seq": 0,
        "timestamp": timestamp,
        "type": event_type,
        "eventType": "commerce.purchases" if event_type == "custom" else None,
        "propositionId": proposition_id,
        "activityId": activity,
        "placementId": placement,
        "itemIds": [offer],
        "identity": {"namespace": "ECID", "id": str(rng.randrange(VISITORS))},
    }
    return "interaction", InteractionEvent(
        sandbox_pk, event_id, 0, proposition_id, timestamp, event_type, record
    )


async def fill(db: Database, sandbox_pk: int, count: int, today: datetime) -> float:
    """Store `count` events with their rollups, as the writer does; returns the seconds."""
    rng = random.Random(12)
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        decisions, interactions = _rows(first, min(first + BATCH, count), rng, sandbox_pk, today)
        for event_kind, rows in ((DECISION_EVENTS, decisions), (INTERACTION_EVENTS, interactions)):
            stored = await db.insert_rows(
                event_kind.table,
                event_kind.columns,
                rows,
                skip_duplicates_of=event_kind.unique,
                then=event_kind.rollup,
            )
            assert stored
        if first and first % 1_000_000 == 0:
            rate = first / (time.perf_counter() - started)
            print(f"  {first:,} events stored ({rate:,.0f}/s)", flush=True)
    return time.perf_counter() - started


def _rows(
    first: int, end: int, rng: random.Random, sandbox_pk: int, today: datetime
) -> tuple[list[Row], list[Row]]:
    """The rows of events first..end-1: (decision rows, interaction rows)."""
    decisions, interactions = [], []
    for i in range(first, end):
        kind, event = _event(i, rng, sandbox_pk, today)
        if kind == "decision":
            decisions.append(DECISION_EVENTS.row(event))  # type: ignore[arg-type]
        else:
            interactions.append(INTERACTION_EVENTS.row(event))  # type: ignore[arg-type]
    return decisions, interactions


class MemoryBatch:
    """store/db.py's Batch in memory, for the bulk fill: the real rollup functions
    (store/rollups.py) run on every batch of rows unchanged, and their upserts and
    insert-if-new land in dicts and sets instead of the database; the final rows are written
    once at the end. Strings are interned: 10 million events' unique rows fit in memory."""

    def __init__(self) -> None:
        self.sums: dict[str, tuple[sa.Table, tuple[str, ...], dict[Row, list[int]]]] = {}
        self.seen: dict[str, tuple[sa.Table, tuple[str, ...], set[Row]]] = {}

    async def insert_new(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[Row], unique: tuple[str, ...]
    ) -> list[Row]:
        assert unique == columns  # the rollups' unique tables: the whole row is the key
        seen = self.seen.setdefault(table.name, (table, columns, set()))[2]
        new = []
        for row in rows:
            interned = tuple(sys.intern(v) if isinstance(v, str) else v for v in row)
            if interned not in seen:
                seen.add(interned)
                new.append(interned)
        return new

    async def add(
        self, table: sa.Table, keys: tuple[str, ...], sums: tuple[str, ...], rows: list[Row]
    ) -> None:
        target = self.sums.setdefault(table.name, (table, (*keys, *sums), {}))[2]
        width = len(keys)
        for row in rows:
            key = tuple(sys.intern(v) if isinstance(v, str) else v for v in row[:width])
            total = target.get(key)
            if total is None:
                target[key] = list(row[width:])
            else:
                for index, value in enumerate(row[width:]):
                    total[index] += value

    def tables(self) -> list[tuple[sa.Table, tuple[str, ...], list[Row]]]:
        """Each rollup table with its columns and final rows."""
        found = [(table, columns, sorted(rows)) for table, columns, rows in self.seen.values()]
        for table, columns, totals in self.sums.values():
            found.append((table, columns, sorted((*k, *v) for k, v in totals.items())))
        return found


async def bulk_fill(db: Database, sandbox_pk: int, count: int, today: datetime) -> float:
    """The same rows as `fill`, faster: the raw events are inserted without the writer's
    duplicate check (their ids are unique by construction, so nothing would be skipped: on
    PostgreSQL a COPY instead of an INSERT per row), and the rollups are computed by the real
    rollup functions over the same batches into a MemoryBatch, then inserted once.
    `check_bulk_fill` shows both fills store the same rollup rows. Returns the seconds."""
    rng = random.Random(12)
    memory = MemoryBatch()
    started = time.perf_counter()
    chunk = BATCH * 10
    for first in range(0, count, chunk):
        end = min(first + chunk, count)
        pending: dict[str, list[Row]] = {"decision": [], "interaction": []}
        for start in range(first, end, BATCH):
            decisions, interactions = _rows(start, min(start + BATCH, end), rng, sandbox_pk, today)
            await decision_rollup(memory, decisions)
            await interaction_rollup(memory, interactions)
            pending["decision"] += decisions
            pending["interaction"] += interactions
        for event_kind, rows in (
            (DECISION_EVENTS, pending["decision"]),
            (INTERACTION_EVENTS, pending["interaction"]),
        ):
            assert await db.insert_rows(event_kind.table, event_kind.columns, rows)
        if first and first % 1_000_000 == 0:
            rate = first / (time.perf_counter() - started)
            print(f"  {first:,} events stored ({rate:,.0f}/s)", flush=True)
    for table, columns, rows in memory.tables():
        for start in range(0, len(rows), 100_000):
            assert await db.insert_rows(table, columns, rows[start : start + 100_000])
    await db.refresh_statistics(ROLLUP_TABLES)
    return time.perf_counter() - started


async def _rollup_rows(db: Database) -> dict[str, list[tuple[object, ...]]]:
    async with db.read() as conn:
        return {
            table.name: sorted(tuple(row) for row in await conn.execute(sa.select(table)))
            for table in ROLLUP_TABLES
        }


async def check_bulk_fill(real_url: str, bulk_url: str, count: int) -> None:
    """Store the first `count` events through the writer's path in one database and through
    bulk_fill in another; every rollup table must hold the same rows."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    for url, how in ((real_url, fill), (bulk_url, bulk_fill)):
        db = Database(url, sqlite_synchronous="normal")
        await upgrade(db)
        async with db.write() as conn:
            sandbox = await tenants.ensure_sandbox(conn, "BENCH@AdobeOrg", "prod")
        await how(db, sandbox.pk, count, today)
        found.append(await _rollup_rows(db))
        await db.dispose()
    real, bulk = found
    for name in real:
        if real[name] != bulk[name]:
            raise AssertionError(f"bulk fill and writer path disagree on {name}")
    sizes = ", ".join(f"{name} {len(rows):,}" for name, rows in real.items())
    print(
        f"bulk fill check: the first {count:,} events give the same rollup rows both ways ({sizes})"
    )


async def scale(url: str, count: int, runs: int, real_path: bool) -> None:
    db = Database(url, sqlite_synchronous="normal")
    await upgrade(db)
    async with db.write() as conn:
        sandbox = await tenants.ensure_sandbox(conn, "BENCH@AdobeOrg", "prod")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = await (fill if real_path else bulk_fill)(db, sandbox.pk, count, today)
    how = "the writer's path" if real_path else "bulk fill"
    print(f"stored {count:,} events with their rollups in {seconds:.0f} s ({how})", flush=True)
    async with db.read() as conn:
        sizes = [
            f"{table.name} {await conn.scalar(sa.select(sa.func.count()).select_from(table)):,}"
            for table in (decision_events, interaction_events, *ROLLUP_TABLES)
        ]
    print("rows: " + ", ".join(sizes), flush=True)
    last = today.date()
    first = last - timedelta(days=29)
    cases = [(("offer", "day"), False), (("offer", "day"), True), (("offer",), False)]
    for group_by, unique_totals in cases:
        query = reports.ReportQuery(
            group_by, first.isoformat(), last.isoformat(), unique_totals=unique_totals
        )
        await reports.report(db, sandbox, query)  # warm the caches once
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            found = await reports.report(db, sandbox, query)
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        label = ",".join(group_by) + (" with uniqueTotals" if unique_totals else "")
        print(
            f"report 30 days by {label}: {len(found.results)} rows, median "
            f"{median * 1000:.0f} ms of {runs} (min {min(times) * 1000:.0f}, max "
            f"{max(times) * 1000:.0f}); displays {found.totals['displays']:,}, unique "
            f"{found.totals['uniqueDisplays']}",
            flush=True,
        )
        if (group_by, unique_totals) == (("offer", "day"), False):
            print(f"30 days by offer,day under 1 s: {'yes' if median < 1 else 'NO'}", flush=True)
    await db.dispose()


def _display(datastream: str, offer: str) -> dict[str, object]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    scope = "eyJhY3Rpdml0eUlkIjoiZGVjIiwicGxhY2VtZW50SWQiOiJoZXJvIn0="
    return {
        "events": [
            {
                "xdm": {
                    "_id": uuid.uuid4().hex,
                    "eventType": "decisioning.propositionDisplay",
                    "timestamp": now,
                    "identityMap": {"ECID": [{"id": "1234", "primary": True}]},
                    "_experience": {
                        "decisioning": {
                            "propositionEventType": {"display": 1},
                            "propositions": [
                                {"id": str(uuid.uuid4()), "scope": scope, "items": [{"id": offer}]}
                            ],
                        }
                    },
                }
            }
        ]
    }


def freshness(database_url: str, samples: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="offerbase-bench-reports-"))
    env = {
        **os.environ,
        "OFFERBASE_DATA_DIR": str(data_dir),
        "OFFERBASE_DATABASE_URL": database_url,
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(env, port)
    try:
        headers = auth_headers(base, env, "FRESH")
        done = subprocess.run(
            [sys.executable, "-m", "offerbase", "datastreams", "create", "--org"]
            + [headers["x-gw-ims-org-id"], "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        datastream = json.loads(done.stdout)["id"]
        delays = []
        with httpx.Client(base_url=base, timeout=10) as client:
            for i in range(samples):
                offer = f"fresh-{i}"
                sent = client.post(
                    f"/ee/v1/interact?configId={datastream}",
                    content=json.dumps(_display(datastream, offer)),
                    headers={"Content-Type": "text/plain"},
                )
                assert sent.status_code == 200, sent.text
                arrived = time.perf_counter()
                while True:
                    found = client.get(
                        "/data/core/ods/reports",
                        params={"groupBy": "offer", "offerId": offer},
                        headers=headers,
                    ).json()["results"]
                    if found and found[0]["displays"] == 1:
                        break
                    if time.perf_counter() - arrived > 30:
                        raise RuntimeError("a display was not in the report within 30 s")
                    time.sleep(0.02)
                delays.append(time.perf_counter() - arrived)
    finally:
        stop_server(server)
    print(
        f"freshness over {samples} displays: median {statistics.median(delays) * 1000:.0f} ms, "
        f"max {max(delays) * 1000:.0f} ms (writer interval 0.2 s, polled every 20 ms)"
    )
    print(f"an event is in the report within 5 s: {'yes' if max(delays) < 5 else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server (a fresh database is made)")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20, help="freshness: displays sent")
    parser.add_argument("--no-freshness", action="store_true")
    parser.add_argument(
        "--real-path", action="store_true", help="fill through the writer's path (slow)"
    )
    parser.add_argument(
        "--check", type=int, default=20_000, help="bulk fill check: events stored both ways"
    )
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"database: {'postgresql' if args.database_url else 'sqlite'}; events {args.events:,}")

    def database(cleanup: ExitStack, name: str) -> str:
        if args.database_url:
            return cleanup.enter_context(fresh_database(args.database_url))
        directory = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="reports-"))
        return f"sqlite:///{directory}/{name}.db"

    if args.check and not args.real_path:
        with ExitStack() as cleanup:
            real, bulk = database(cleanup, "real"), database(cleanup, "bulk")
            asyncio.run(check_bulk_fill(real, bulk, args.check))
    with ExitStack() as cleanup:
        url = database(cleanup, "bench")
        asyncio.run(scale(url, args.events, args.runs, args.real_path))
        if not args.no_freshness:  # on the same database: at --events stored events
            print(f"load average {os.getloadavg()[0]:.1f}")
            freshness(url, args.samples)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
