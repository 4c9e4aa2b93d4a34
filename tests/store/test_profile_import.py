"""The chunked NDJSON import on SQLite and PostgreSQL: it stores exactly what importing the lines
one by one (one PUT per line) stores, across chunk boundaries, with duplicates inside a chunk
and bad lines among good ones.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from offerbase.store import tenants
from offerbase.store.db import Database
from offerbase.store.errors import StoreError
from offerbase.store.profiles import (
    ImportSummary,
    Profiles,
    find_profile,
    import_identity,
    import_lines,
)
from offerbase.store.tenants import Sandbox

NAMESPACES = ["Email", "EMAIL", "ECID", "crmId"]
POOL = [f"v{i}" for i in range(25)]


async def _sandbox(db: Database) -> Sandbox:
    async with db.write() as conn:
        return await tenants.ensure_sandbox(conn, f"{uuid.uuid4().hex}@AdobeOrg", "prod")


def _line(identities: list[tuple[str, str, bool]], n: int, **extra: Any) -> bytes:
    identity_map: dict[str, list[dict[str, Any]]] = {}
    for ns, value, primary in identities:
        identity_map.setdefault(ns, []).append({"id": value, "primary": primary})
    return orjson.dumps({"identityMap": identity_map, "n": n, **extra})


def _generated(seed: int, count: int) -> list[bytes]:
    """Lines over a small pool of identities, so people repeat, merge and clash often."""
    rng = random.Random(seed)
    lines = []
    for n in range(count):
        roll = rng.random()
        if roll < 0.04:
            lines.append(b"{not json")
        elif roll < 0.06:
            lines.append(b"")
        elif roll < 0.08:
            lines.append(orjson.dumps({"n": n}))  # no identity
        elif roll < 0.10:
            bad = {"ups": {"s": {"status": "maybe"}}}
            lines.append(_line([("Email", rng.choice(POOL), False)], n, segmentMembership=bad))
        else:
            picked = [
                (rng.choice(NAMESPACES), rng.choice(POOL), rng.random() < 0.3)
                for _ in range(rng.randint(1, 3))
            ]
            lines.append(_line(picked, n))
    return lines


async def _one_by_one(db: Database, sandbox: Sandbox, lines: list[bytes]) -> ImportSummary:
    """The reference: each line a single upsert (a PUT) in its own savepoint, in order."""
    summary = ImportSummary()
    async with db.write() as conn:
        repo = Profiles(conn, sandbox)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                body = orjson.loads(line)
                namespace, identity = import_identity(body)
                async with conn.begin_nested():
                    await repo.upsert(namespace, identity, body)
            except orjson.JSONDecodeError:
                summary.fail(number, "json")
            except StoreError as exc:
                summary.fail(number, exc.detail)
            else:
                summary.imported += 1
    return summary


async def _stored(db: Database, sandbox: Sandbox) -> dict[tuple[str, str], Any]:
    """Every pool identity -> (profile key, body) of the profile it reaches, through the reads."""
    found = {}
    async with db.read() as conn:
        repo = Profiles(conn, sandbox)
        for ns in ("email", "ecid", "crmid", "seed"):
            for value in POOL:
                found[(ns, value)] = await repo.get(ns, value)
    for ns, value in list(found):
        if found[(ns, value)] is not None:
            key, body = await find_profile(db, sandbox, {ns: [{"id": value}]})
            found[(ns, value)] = (key, body)
    return found


async def _seed(db: Database, sandbox: Sandbox) -> None:
    """Stored profiles before the import, so lines replace and clash with them too."""
    async with db.write() as conn:
        repo = Profiles(conn, sandbox)
        for i in range(0, 24, 3):
            body = {"identityMap": {"ECID": [{"id": POOL[i]}], "crmId": [{"id": POOL[i + 1]}]}}
            await repo.put("seed", POOL[i], body | {"seeded": i})


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("batch_size", [1, 7, 500])
async def test_chunked_import_stores_what_line_by_line_stores(
    database: Database, seed: int, batch_size: int
) -> None:
    lines = _generated(seed, 300)
    chunked, reference = await _sandbox(database), await _sandbox(database)
    await _seed(database, chunked)
    await _seed(database, reference)
    summary = await import_lines(database, chunked, iter(lines), batch_size=batch_size)
    expected = await _one_by_one(database, reference, lines)
    assert (summary.imported, summary.failed) == (expected.imported, expected.failed)
    assert [e.line for e in summary.errors] == [e.line for e in expected.errors]
    assert summary.imported > 100  # the generator exercises both
    assert summary.failed > 20
    assert await _stored(database, chunked) == await _stored(database, reference)


async def test_duplicates_within_a_chunk(database: Database) -> None:
    sandbox = await _sandbox(database)
    lines = [
        _line([("Email", "a", True)], 1),
        _line([("email", "a", True), ("ECID", "e1", False)], 2),  # the same person, one more id
        _line([("ECID", "e1", True)], 3),  # the same person again: drops email:a
        _line([("Email", "a", True)], 4),  # so email:a is a new person now
        _line([("Email", "a", True), ("ECID", "e1", False)], 5),  # e1 is someone else's
    ]
    summary = await import_lines(database, sandbox, iter(lines))
    assert (summary.imported, summary.failed) == (4, 1)
    assert [e.line for e in summary.errors] == [5]
    assert "ecid:e1 already belongs to another profile" in summary.errors[0].detail
    # Line 3 replaced the profile of lines 1-2, whose key (email:a) it dropped.
    assert await find_profile(database, sandbox, {"ECID": [{"id": "e1"}]}) == (
        "ecid:e1",
        {"identityMap": {"ECID": [{"id": "e1", "primary": True}]}, "n": 3},
    )
    assert await find_profile(database, sandbox, {"Email": [{"id": "a"}]}) == (
        "email:a",
        {"identityMap": {"Email": [{"id": "a", "primary": True}]}, "n": 4},
    )


async def test_key_stays_while_its_identity_does(database: Database) -> None:
    sandbox = await _sandbox(database)
    lines = [
        _line([("Email", "k", True), ("ECID", "k1", False)], 1),
        _line([("ECID", "k1", True), ("Email", "k", False), ("crmId", "c", False)], 2),
    ]
    summary = await import_lines(database, sandbox, iter(lines))
    assert (summary.imported, summary.failed) == (2, 0)
    key, body = await find_profile(database, sandbox, {"crmId": [{"id": "c"}]})
    assert (key, body["n"]) == ("email:k", 2)


async def test_bad_line_in_the_middle_of_a_chunk_fails_alone(database: Database) -> None:
    sandbox = await _sandbox(database)
    lines = [_line([("Email", f"m{i}", True)], i) for i in range(9)]
    lines[4] = b'{"identityMap": {"Email": [{"id": ""}]}}'
    summary = await import_lines(database, sandbox, iter(lines), batch_size=100)
    assert (summary.imported, summary.failed) == (8, 1)
    assert [(e.line, e.detail) for e in summary.errors] == [
        (5, "/identityMap/Email/0/id: The identity id must be a non-empty string.")
    ]
    for i in (3, 5):
        assert (await find_profile(database, sandbox, {"Email": [{"id": f"m{i}"}]}))[1]["n"] == i


async def test_errors_keep_line_order_across_chunks(database: Database) -> None:
    sandbox = await _sandbox(database)
    lines = [_line([("Email", "same", True), ("ECID", f"x{i}", False)], i) for i in range(6)]
    lines[1] = b"[1]"
    lines[4] = b"{"
    summary = await import_lines(database, sandbox, iter(lines), batch_size=4)
    # Lines 2 and 5 are bad; the others all address email:same, each replacing the last.
    assert (summary.imported, summary.failed) == (4, 2)
    assert [e.line for e in summary.errors] == [2, 5]
    _key, body = await find_profile(database, sandbox, {"Email": [{"id": "same"}]})
    assert body["n"] == 5
    assert await find_profile(database, sandbox, {"ECID": [{"id": "x3"}]}) == ("ecid:x3", {})


async def _until_waiting_on_a_lock(db: Database) -> None:
    """Until a session of this database waits for a row lock on an insert of profiles (the
    text may not name a tenant table: the tenancy guard refuses SQL text that does)."""
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO profile%'"
    )
    for _ in range(400):
        async with db.read() as conn:
            if await conn.scalar(waiting):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the import never waited for the other transaction's identity")


async def test_a_chunk_the_database_refuses_is_imported_line_by_line(database: Database) -> None:
    if database.is_sqlite:
        pytest.skip("needs a concurrent writer, which SQLite serializes")
    sandbox = await _sandbox(database)
    lines = [_line([("Email", f"r{i}", True), ("ECID", f"c{i}", False)], i) for i in range(5)]
    async with database.write() as conn:
        # Uncommitted while the import reads: its bulk insert of ecid:c2 then waits for this
        # transaction and fails when it commits, so the chunk is retried line by line.
        await Profiles(conn, sandbox).put("ECID", "c2", {"other": True})
        task = asyncio.create_task(import_lines(database, sandbox, iter(lines)))
        await _until_waiting_on_a_lock(database)
    summary = await task
    assert (summary.imported, summary.failed) == (4, 1)
    assert [e.line for e in summary.errors] == [3]
    assert "ecid:c2 already belongs to another profile" in summary.errors[0].detail
    assert (await find_profile(database, sandbox, {"ECID": [{"id": "c2"}]}))[1]["other"]
    assert await find_profile(database, sandbox, {"Email": [{"id": "r2"}]}) == ("email:r2", {})
    assert (await find_profile(database, sandbox, {"Email": [{"id": "r4"}]}))[1]["n"] == 4
