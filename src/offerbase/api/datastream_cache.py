"""Each worker's view of the datastreams, which every Edge request looks up by its public id.

An Edge request carries no credential: its datastream id finds its tenant. Asking the database
on every request would add a query to every decision, so each worker remembers what it found
(and what it did not) for `ttl_seconds` (settings.snapshot_poll_seconds): a datastream created,
changed or deleted anywhere (the CLI, another worker, another host) is seen by every worker
within that. Ids that no datastream can have are answered None without a query, and the
memory is bounded: past `max_entries` the oldest entries go first, so a flood of random ids
costs one query each and no more memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from offerbase.store import datastreams as store
from offerbase.store.datastreams import Datastream
from offerbase.store.db import Database

MAX_ENTRIES = 10_000


class DatastreamCache:
    def __init__(self, db: Database, ttl_seconds: float, *, max_entries: int = MAX_ENTRIES) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        # id -> (when it was read, monotonic seconds; the datastream or None: not found)
        self._entries: OrderedDict[str, tuple[float, Datastream | None]] = OrderedDict()
        self.lookups = 0  # database reads, for tests
        # id -> the read under way: when an entry expires under load, every request in flight
        # for that datastream would otherwise run its own query at the same moment (and open
        # pool connections for them), a stall of all of them every `ttl_seconds`.
        self._reading: dict[str, asyncio.Task[Datastream | None]] = {}

    async def get(self, datastream_id: str) -> Datastream | None:
        """The datastream as of at most `ttl_seconds` ago; None when there is none."""
        if not store.valid_id(datastream_id):
            return None
        now = time.monotonic()
        entry = self._entries.get(datastream_id)
        if entry is not None and now - entry[0] < self.ttl_seconds:
            return entry[1]
        reading = self._reading.get(datastream_id)
        if reading is None:
            reading = asyncio.create_task(self._read(datastream_id, now))
            self._reading[datastream_id] = reading
            reading.add_done_callback(lambda done: self._done(datastream_id, done))
        # Shielded: a caller that gives up (a client gone) does not cancel the others' read.
        return await asyncio.shield(reading)

    async def _read(self, datastream_id: str, now: float) -> Datastream | None:
        self.lookups += 1
        async with self.db.read() as conn:
            found = await store.resolve_datastream(conn, datastream_id)
        self._entries[datastream_id] = (now, found)
        self._entries.move_to_end(datastream_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return found

    def _done(self, datastream_id: str, done: asyncio.Task[Datastream | None]) -> None:
        if self._reading.get(datastream_id) is done:
            del self._reading[datastream_id]

    def forget(self, datastream_id: str) -> None:
        """A change made through this worker: read it again on next use (read-your-writes)."""
        self._entries.pop(datastream_id, None)
        self._reading.pop(datastream_id, None)  # a read under way may predate the change
