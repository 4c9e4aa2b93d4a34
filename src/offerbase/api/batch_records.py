"""What a batch job records once every row is decided, before its rows are published: what the
reports count of its decisions (the rollups: docs/reports.md) and its counter increments (Adobe:
a job's decisions count toward decision-event caps after the job, from the counters read at its
start). The job's decision events themselves are its output rows (docs/batch.md,
"Recording"): they are not copied into the decision events table. One function for
`offerbase batch decide` and the Batch API's job runner."""

from __future__ import annotations

from collections.abc import Mapping

from offerbase.batch.run import Tally
from offerbase.store.counters import CounterStore
from offerbase.store.db import Database
from offerbase.store.rollups import add_batch_decisions
from offerbase.store.tenants import Sandbox

COUNTER_WRITE_CHUNK = 500  # counter keys per increment call


async def record_batch(
    db: Database,
    counters: CounterStore,
    sandbox: Sandbox,
    consumption: Mapping[str, int],
    tally: Tally,
) -> None:
    """Add the job's decisions to the reports' rollups (one transaction) and its consumption
    to the capping counters."""
    await add_batch_decisions(db, sandbox.pk, tally.day, tally.offers, tally.propositions)
    # Unconditional increments: the job's decisions count even if online traffic consumed the
    # same counters meanwhile (counted after the job, from the counts read at its start).
    items = list(consumption.items())
    for i in range(0, len(items), COUNTER_WRITE_CHUNK):
        chunk = [key for key, n in items[i : i + COUNTER_WRITE_CHUNK] for _ in range(n)]
        await counters.add(sandbox.pk, chunk)
