"""Per-worker cache of compiled catalog snapshots, one per sandbox.

The hot path never reads the catalog from the database: it reads the in-memory Snapshot.
How fresh it is:

* At most every `poll_seconds` a request checks the sandbox's catalog version (one primary-key
  read on the database's point-read path) and rebuilds the snapshot when it changed. Requests
  that arrive meanwhile wait for that check (they never take the old snapshot, however long the
  sandbox was idle), so no decision uses a catalog older than `poll_seconds` plus one rebuild.
* A catalog write through this worker invalidates the sandbox's entry (`invalidate`): the next
  decision here re-checks the version, and uses the write.
* A decision that names an id the snapshot does not know re-checks once (`get(recheck=True)`)
  before answering 404, so an entity just created through another worker is found.
* On PostgreSQL a write through any worker (or the CLI) also invalidates the entry in every
  worker at once: `start()` runs a LISTEN connection (store/notify.py) that calls `invalidate`
  for each committed write. Polling stays as the safety net while that connection is down.

An invalidation also voids a version check that was in flight when it came (the check may have
read the version just before the write committed), so it is recorded as a time and compared
with the start of the check that produced the entry.

In a serving process (`freeze`, set by the app's start-up, which freezes the start-up objects
likewise) a snapshot is frozen out of the cyclic garbage collector (`gc.freeze()`) when it is
built: it lives until the catalog changes and holds some ten tracked objects an offer, so
otherwise every full collection of the worker walks it (at 10,000 offers, tens of milliseconds
on whatever request or page triggered it: the tail of bench/admin.py's pages). A snapshot holds
no reference cycle, so the one it replaces is still freed, by reference counting
(tests/api/test_snapshot_freshness.py). Apps without a start-up (tests) do not freeze: each
freeze would keep that test's whole app from the collector for good.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass

from offerbase.catalog import load_catalog
from offerbase.engine import Snapshot, build_snapshot
from offerbase.metrics import SNAPSHOT_BUILDS
from offerbase.store.db import Database
from offerbase.store.library import Library, catalog_version
from offerbase.store.notify import CatalogListener
from offerbase.store.tenants import Sandbox


@dataclass
class _Entry:
    snapshot: Snapshot
    version: int
    checked_at: float


class SnapshotCache:
    def __init__(self, db: Database, poll_seconds: float) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self._entries: dict[int, _Entry] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        # When each sandbox (and every sandbox) was last invalidated: an entry whose check
        # started before that is not fresh.
        self._invalidated: dict[int, float] = {}
        self._all_invalidated = float("-inf")
        self.listener: CatalogListener | None = None
        self.checks = 0  # version checks done, and snapshots built: for tests and benchmarks
        self.builds = 0
        self.freeze = False  # freeze each snapshot built (see the module docstring)

    async def start(self) -> None:
        """Listen for other workers' catalog writes (PostgreSQL; SQLite only polls)."""
        if not self.db.is_sqlite and self.listener is None:
            self.listener = CatalogListener(self.db.url, self.invalidate, self.invalidate_all)
            self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None

    def _fresh(self, pk: int, since: float) -> Snapshot | None:
        """The snapshot if its version was checked within the poll interval, after `since`
        (a recheck's start) and after the sandbox was last invalidated."""
        entry = self._entries.get(pk)
        since = max(since, self._invalidated.get(pk, float("-inf")), self._all_invalidated)
        if entry is None or entry.checked_at <= since:
            return None
        return entry.snapshot if time.monotonic() - entry.checked_at < self.poll_seconds else None

    async def get(self, sandbox: Sandbox, *, recheck: bool = False) -> Snapshot:
        """The sandbox's snapshot; `recheck` asks for a version check now, whatever its age."""
        since = time.monotonic() if recheck else float("-inf")
        fresh = self._fresh(sandbox.pk, since)
        if fresh is not None:
            return fresh
        lock = self._locks.setdefault(sandbox.pk, asyncio.Lock())
        async with lock:  # one check at a time; the others wait for its answer, then share it
            fresh = self._fresh(sandbox.pk, since)
            if fresh is not None:
                return fresh
            entry = self._entries.get(sandbox.pk)
            checked_at = time.monotonic()
            self.checks += 1
            version = await catalog_version(self.db, sandbox)
            if entry is not None and entry.version == version:
                entry.checked_at = checked_at
                return entry.snapshot
            started = time.perf_counter()
            async with self.db.read() as conn:
                version, bodies = await Library(conn, sandbox).current_bodies()
            # No await from here to the freeze, which takes every object alive: the garbage is
            # collected first (a pass over the objects made since the last freeze, ~10 ms at
            # 10,000 offers, the bodies included; the build takes ~100 ms).
            if self.freeze:
                gc.collect()
            snapshot = build_snapshot(load_catalog(bodies), version=version)
            if self.freeze:
                gc.freeze()
            SNAPSHOT_BUILDS.observe(time.perf_counter() - started)
            self.builds += 1
            self._entries[sandbox.pk] = _Entry(snapshot, version, checked_at)
            return snapshot

    def invalidate(self, sandbox_pk: int) -> None:
        """The sandbox's catalog changed (a write committed through this worker, or another
        worker's notification): check the version on next use."""
        self._invalidated[sandbox_pk] = time.monotonic()

    def invalidate_all(self) -> None:
        """Notifications may have been missed (the listener reconnected): check every sandbox."""
        self._all_invalidated = time.monotonic()
