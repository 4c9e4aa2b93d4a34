"""Each worker's view of the credentials: revocations and rotations seen within a second.

Token signatures are checked once per worker and cached (api/tokens.py), so whether a token's
credential is still valid is asked here, on every request. Asking the database every time
would add a query to every decision; instead each worker keeps every credential (without its
secret hash) in memory and, at most every `poll_seconds`, reads one number that every change
to the credentials table bumps (`directory_state.credentials_version`, store/tenants.py). Only
when it moved does the worker read the table again. So a revocation made anywhere (the CLI,
another worker, another host) is in force on every worker after at most `poll_seconds` plus
one query.
"""

from __future__ import annotations

import asyncio
import time

from offerbase.store import tenants
from offerbase.store.db import Database
from offerbase.store.tenants import Credential


class CredentialCache:
    def __init__(self, db: Database, poll_seconds: float) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self._known: dict[str, Credential] = {}
        self._version: int | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()
        self.checks = 0  # version reads, for tests: bounded by time, not by requests
        self.loads = 0  # whole-table reads

    async def get(self, client_id: str) -> Credential | None:
        """The credential as of at most `poll_seconds` ago; an id not seen then is looked up
        once more at once (a credential created since)."""
        if time.monotonic() - self._checked_at >= self.poll_seconds:
            await self._check(float("-inf"))
        found = self._known.get(client_id)
        if found is None:
            await self._check(time.monotonic())
            found = self._known.get(client_id)
        return found

    def invalidate(self) -> None:
        """A change made through this worker: check on next use (read-your-writes)."""
        self._checked_at = float("-inf")

    async def _check(self, since: float) -> None:
        """Read the version, and the table when the version moved, unless a check that
        started at or after `since` finished within the poll interval."""
        async with self._lock:  # one check at a time; the others wait and share its answer
            age = time.monotonic() - self._checked_at
            if self._checked_at >= since and age < self.poll_seconds:
                return
            checked_at = time.monotonic()
            self.checks += 1
            # Twice a second per worker at most: the plain read path is cheap enough.
            async with self.db.read() as conn:
                # The version first: a change committed between the two reads is then
                # loaded now and loaded again next time, never missed.
                version = await tenants.credentials_version(conn)
                if version != self._version:
                    listed = await tenants.list_credentials(conn)
                    self._known = {credential.client_id: credential for credential in listed}
                    self._version = version
                    self.loads += 1
            self._checked_at = checked_at
