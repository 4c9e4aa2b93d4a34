"""An update's new body is computed (patch applied, body validated, PQL compiled) before the
sandbox's write lock is taken (`Library.draft`); under the lock the draft is used when the
entity is unchanged, and the transform runs again when another write came in between."""

from __future__ import annotations

import uuid
from typing import Any

from offerbase.store import tenants
from offerbase.store.db import Database
from offerbase.store.library import Actor, Library

ACTOR = Actor("updates-test", "updates-client")


class Counting:
    """A transform that counts how often it runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {**body, "name": self.name}


async def _tag(database: Database) -> tenants.Sandbox:
    async with database.write() as conn:
        sandbox = await tenants.ensure_sandbox(conn, f"{uuid.uuid4().hex}@AdobeOrg", "prod")
        await Library(conn, sandbox).create("tag", {"name": "T"}, ACTOR, "t")
    return sandbox


async def test_an_unchanged_entity_takes_the_draft(database: Database) -> None:
    sandbox = await _tag(database)
    rename = Counting("Renamed")
    async with database.read() as conn:
        draft = await Library(conn, sandbox).draft(["tag"], "t", rename, None)
    async with database.write() as conn:
        entity = await Library(conn, sandbox).update(["tag"], "t", rename, ACTOR, None, draft)
    assert (entity.body["name"], entity.etag, rename.calls) == ("Renamed", 2, 1)


async def test_a_write_in_between_runs_the_transform_again(database: Database) -> None:
    sandbox = await _tag(database)
    rename = Counting("Renamed")
    async with database.read() as conn:
        draft = await Library(conn, sandbox).draft(["tag"], "t", rename, None)
    async with database.write() as conn:
        described = {"name": "T", "description": "added meanwhile"}
        await Library(conn, sandbox).update(["tag"], "t", lambda _old: described, ACTOR, None)
    async with database.write() as conn:
        entity = await Library(conn, sandbox).update(["tag"], "t", rename, ACTOR, None, draft)
    assert entity.body == {"name": "Renamed", "description": "added meanwhile"}
    assert (entity.etag, rename.calls) == (3, 2)


async def test_a_deleted_and_recreated_entity_with_another_body_runs_it_again(
    database: Database,
) -> None:
    sandbox = await _tag(database)
    keep = Counting("Kept")
    async with database.read() as conn:
        draft = await Library(conn, sandbox).draft(["tag"], "t", keep, None)
    async with database.write() as conn:
        library = Library(conn, sandbox)
        await library.delete(["tag"], "t", None)
        await library.create("tag", {"name": "T", "description": "new"}, ACTOR, "t")  # etag 1
    async with database.write() as conn:
        entity = await Library(conn, sandbox).update(["tag"], "t", keep, ACTOR, None, draft)
    assert entity.body == {"name": "Kept", "description": "new"}
    assert keep.calls == 2
