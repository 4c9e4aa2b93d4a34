"""What AI ranking's learning costs: the queue row written with each interaction event, and the
learner's throughput (store/ranking.py).

    .venv/bin/python bench/ranking_learner.py [--database-url postgresql+asyncpg://...] \
        [--events 20000] [--rounds 5]

A fresh database gets --events ranked decision events. Then, in alternating rounds (ABAB...,
so a slow spell of the shared machine hits both), --events display events are stored the way
the interaction writer stores them (Database.insert_rows in batches of 500, idempotent, with
what commits with them): A with the reports' rollups only (before AI ranking), B with the
rollups and the learner's queue (store/interactions.after_insert). Printed: the medians of
each and their ratio (the verdict: what the queue adds to storing feedback), then how fast one
learner turns B's queued displays into ranking_stats (events per second, one sandbox).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from offerbase.store import tenants
from offerbase.store.db import Database
from offerbase.store.events import DECISION_EVENTS, PendingEvent
from offerbase.store.interactions import INTERACTION_EVENTS, InteractionEvent, after_insert
from offerbase.store.ranking import epoch_ms, learn, pending
from offerbase.store.rollups import interaction_rollup
from pgdb import fresh_database
from serving import machine

BATCH = 500
STAMP = "2026-12-01T00:00:00.000Z"


def decision(pk: int, i: int) -> PendingEvent:
    ranking = {"strategyId": "s", "arm": "model" if i % 10 else "holdout", "contextKey": ""}
    body = {
        "xdm:propositions": [
            {
                "xdm:activity": {"xdm:id": "dec"},
                "xdm:placement": {"xdm:id": "web"},
                "xdm:selections": [{"xdm:id": f"offer-{i % 5}"}],
                "offerbase:ranking": ranking,
            }
        ]
    }
    return PendingEvent(pk, f"p{i}", STAMP, body)


def display(pk: int, round_name: str, i: int) -> InteractionEvent:
    body = {
        "receivedAt": STAMP,
        "activityId": "dec",
        "placementId": "web",
        "itemIds": [f"offer-{i % 5}"],
        "identity": {"namespace": "ECID", "id": str(i)},
    }
    return InteractionEvent(pk, f"{round_name}-{i}", 0, f"p{i}", STAMP, "display", body)


async def store(db: Database, rows: list[tuple[object, ...]], queued: bool) -> float:
    kind = INTERACTION_EVENTS
    started = time.perf_counter()
    for first in range(0, len(rows), BATCH):
        batch = rows[first : first + BATCH]
        while not await db.insert_rows(
            kind.table,
            kind.columns,
            batch,
            skip_duplicates_of=kind.unique,
            then=after_insert if queued else interaction_rollup,
        ):
            await asyncio.sleep(0.001)
    return time.perf_counter() - started


async def bench(url: str, events: int, rounds: int) -> None:
    from offerbase.store.migrate import upgrade

    db = Database(url, sqlite_synchronous="normal")
    await upgrade(db)
    async with db.write() as conn:
        sandbox = await tenants.ensure_sandbox(conn, "LEARNER@AdobeOrg", "prod")
    pk = sandbox.pk
    decisions = [DECISION_EVENTS.row(decision(pk, i)) for i in range(events)]
    for first in range(0, events, 5000):
        assert await db.insert_rows(
            DECISION_EVENTS.table, DECISION_EVENTS.columns, decisions[first : first + 5000]
        )
    times: dict[str, list[float]] = {"rollups only": [], "rollups + queue": []}
    for r in range(rounds):
        for name, queued in (("rollups only", False), ("rollups + queue", True)):
            rows = [
                INTERACTION_EVENTS.row(display(pk, f"{int(queued)}-{r}", i)) for i in range(events)
            ]
            times[name].append(await store(db, rows, queued))
    print(f"machine: {machine()}")
    print(f"backend: {'SQLite' if db.is_sqlite else 'PostgreSQL'}; {events:,} displays a round")
    medians = {}
    for name, found in times.items():
        medians[name] = statistics.median(found)
        rate = events / medians[name]
        print(f"  store, {name:<16} median {medians[name]:.2f} s of {rounds} ({rate:,.0f}/s)")
    ratio = medians["rollups + queue"] / medians["rollups only"]
    print(f"queue cost: storing feedback takes {ratio:.2f}x as long with the learner's queue")
    queued = await pending(db, pk)
    started = time.perf_counter()
    now = epoch_ms(datetime.now(UTC))
    counted = 0
    while True:
        learned = await learn(db, pk, now, lambda _strategy: None)
        counted += learned.counted
        if not learned.done:
            break
    seconds = time.perf_counter() - started
    print(
        f"learner: {counted:,} of {queued:,} queued displays learned in {seconds:.2f} s "
        f"({counted / seconds:,.0f}/s, batches of 500)"
    )
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with ExitStack() as cleanup:
        url = args.database_url
        if url:
            url = cleanup.enter_context(fresh_database(url))
        else:
            directory = cleanup.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite+aiosqlite:///{Path(directory) / 'learner.db'}"
        asyncio.run(bench(url, args.events, args.rounds))


if __name__ == "__main__":
    main()
