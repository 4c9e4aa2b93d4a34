"""This database's deployment id: what the keys it owns outside the database (capping counters
in Redis) are named after, so that two deployments sharing a Redis never share a key.

The id is random, generated once when the database is created (migration 0007), and lives in
the database: every worker and host of a deployment reads the same one, and a database
restored in place keeps its id and so finds its counters again. A copy of a database started
as a second deployment beside the first is the one thing an id in the database cannot tell
apart: `new_deployment_id` (`offerbase deployment new-id`) gives the copy its own.
docs/operations.md, "Redis", says what is promised.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from offerbase.store.clock import now_iso
from offerbase.store.db import Database
from offerbase.store.tables import deployment


async def deployment_id(db: Database) -> str:
    async with db.read() as conn:
        found = await conn.scalar(sa.select(deployment.c.id))
    if found is None:  # migration 0007 writes it; a database without it is not migrated
        raise LookupError("This database has no deployment id: it is not migrated.")
    return str(found)


async def new_deployment_id(db: Database) -> str:
    """Replace the id (a copy of a database becoming a deployment of its own); the counters
    kept in Redis under the old id are left to the deployment that still has it."""
    new = uuid.uuid4().hex
    async with db.write() as conn:
        await conn.execute(sa.delete(deployment))
        await conn.execute(sa.insert(deployment).values(id=new, created=now_iso()))
    return new
