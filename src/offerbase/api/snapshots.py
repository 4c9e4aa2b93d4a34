"""Per-worker cache of compiled catalog snapshots, one per sandbox.

The hot path never reads the catalog from the database: it reads the in-memory Snapshot.
At most every `poll_seconds` a request checks the sandbox's catalog version (one primary-key
read on the database's point-read path) and rebuilds the snapshot when it changed, so every
worker uses a catalog change within `poll_seconds` plus one rebuild. Requests that arrive while
one of them checks or rebuilds are served the snapshot in hand: they never queue behind it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from offerbase.catalog import load_catalog
from offerbase.engine import Snapshot, build_snapshot
from offerbase.metrics import SNAPSHOT_BUILDS
from offerbase.store.db import Database
from offerbase.store.library import Library, catalog_version
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
        self.builds = 0

    async def get(self, sandbox: Sandbox) -> Snapshot:
        entry = self._entries.get(sandbox.pk)
        if entry is not None and time.monotonic() - entry.checked_at < self.poll_seconds:
            return entry.snapshot
        lock = self._locks.setdefault(sandbox.pk, asyncio.Lock())
        if entry is not None and lock.locked():
            # Another request is checking or rebuilding: serve the snapshot we have rather
            # than queue every concurrent decision behind that check.
            return entry.snapshot
        async with lock:
            entry = self._entries.get(sandbox.pk)
            if entry is not None and time.monotonic() - entry.checked_at < self.poll_seconds:
                return entry.snapshot
            checked_at = time.monotonic()
            version = await catalog_version(self.db, sandbox)
            if entry is not None and entry.version == version:
                entry.checked_at = checked_at
                return entry.snapshot
            started = time.perf_counter()
            async with self.db.read() as conn:
                version, bodies = await Library(conn, sandbox).current_bodies()
            snapshot = build_snapshot(load_catalog(bodies), version=version)
            SNAPSHOT_BUILDS.observe(time.perf_counter() - started)
            self.builds += 1
            self._entries[sandbox.pk] = _Entry(snapshot, version, checked_at)
            return snapshot
