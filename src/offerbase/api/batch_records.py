"""What a batch job records once every row is decided, before its rows are published: its
decision events (so the reports include batch decisions) and its counter increments (Adobe:
a job's decisions count toward decision-event caps after the job, from the counters read at its
start). One function for `offerbase batch decide` and the Batch API's job runner."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow.parquet as pq

from offerbase.store.counters import CounterStore
from offerbase.store.db import Database
from offerbase.store.events import write_encoded_events
from offerbase.store.tenants import Sandbox

COUNTER_WRITE_CHUNK = 500  # counter keys per increment call


async def record_batch(
    db: Database,
    counters: CounterStore,
    sandbox: Sandbox,
    consumption: Mapping[str, int],
    event_files: Sequence[Path | str],
) -> None:
    """Store the job's decision events (Parquet files of proposition_id, timestamp, body, read
    one at a time: bounded memory) and add its consumption to the capping counters."""

    def events() -> Iterator[tuple[str, str, str]]:
        for path in event_files:
            table = pq.read_table(path)
            yield from zip(
                table.column("proposition_id").to_pylist(),
                table.column("timestamp").to_pylist(),
                table.column("body").to_pylist(),
                strict=True,
            )

    await write_encoded_events(db, sandbox, events())
    # Unconditional increments: the job's decisions count even if online traffic consumed the
    # same counters meanwhile (counted after the job, from the counts read at its start).
    items = list(consumption.items())
    for i in range(0, len(items), COUNTER_WRITE_CHUNK):
        chunk = [key for key, n in items[i : i + COUNTER_WRITE_CHUNK] for _ in range(n)]
        await counters.add(sandbox.pk, chunk)
