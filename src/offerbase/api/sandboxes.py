"""Per-worker cache of sandboxes, looked up by (organization, sandbox name) on every request."""

from __future__ import annotations

from offerbase.store import tenants
from offerbase.store.db import Database
from offerbase.store.tenants import Sandbox


class SandboxCache:
    """Sandboxes never change once created, so each worker keeps the ones it has seen."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: dict[tuple[str, str], Sandbox] = {}

    async def get(self, org: str, name: str) -> Sandbox | None:
        key = (org, name)
        if key not in self._known:
            async with self.db.read() as conn:
                found = await tenants.get_sandbox(conn, org, name)
            if found is None:
                return None
            self._known[key] = found
        return self._known[key]
