"""The profile repository on SQLite and PostgreSQL: identities, conflicts, tenancy, find, import.

`find_profile` is the decisioning read (the database's point-read path): it sees committed
profiles, so the tests call it after the writing transaction ends.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from offerbase.store import tenants
from offerbase.store.db import Database
from offerbase.store.errors import NotFound
from offerbase.store.profiles import (
    IDENTITY_CHUNK,
    MAX_PROFILE_IDENTITIES,
    IdentityConflict,
    InvalidProfile,
    PatchTestFailed,
    Profiles,
    ProfileTooLarge,
    find_profile,
    import_lines,
    request_identities,
)
from offerbase.store.tenants import Sandbox

JOE = {
    "person": {"name": {"firstName": "Joe"}},
    "identityMap": {
        "Email": [{"id": "joe@example.com", "primary": True}],
        "ECID": [{"id": "ecid-joe"}],
    },
    "segmentMembership": {"ups": {"seg-1": {"status": "realized"}}},
}


async def _sandbox(db: Database, org: str | None = None, name: str = "prod") -> Sandbox:
    async with db.write() as conn:
        return await tenants.ensure_sandbox(conn, org or f"{uuid.uuid4().hex}@AdobeOrg", name)


@pytest.fixture
async def sandbox(database: Database) -> Sandbox:
    return await _sandbox(database)


async def test_put_get_by_every_identity(database: Database, sandbox: Sandbox) -> None:
    async with database.write() as conn:
        stored = await Profiles(conn, sandbox).put("crmId", "C-1", JOE)
    # The addressed identity joins the stored identityMap.
    assert stored["identityMap"]["crmId"] == [{"id": "C-1"}]
    async with database.read() as conn:
        repo = Profiles(conn, sandbox)
        for ns, value in [("crmid", "C-1"), ("EMAIL", "joe@example.com"), ("ecid", "ecid-joe")]:
            assert await repo.get(ns, value) == stored
        assert await repo.get("email", "JOE@example.com") is None  # ids are case-sensitive
        assert await repo.get("phone", "joe@example.com") is None


async def test_replace_unlinks_dropped_identities(database: Database, sandbox: Sandbox) -> None:
    async with database.write() as conn:
        repo = Profiles(conn, sandbox)
        first = await repo.upsert("Email", "joe@example.com", JOE)
        again = await repo.upsert("Email", "joe@example.com", {"person": {"age": 3}})
    assert first.created
    assert not again.created
    assert again.body == {
        "person": {"age": 3},
        "identityMap": {"Email": [{"id": "joe@example.com"}]},
    }
    async with database.read() as conn:
        assert await Profiles(conn, sandbox).get("ECID", "ecid-joe") is None


async def test_identity_conflict(database: Database, sandbox: Sandbox) -> None:
    async with database.write() as conn:
        await Profiles(conn, sandbox).put("Email", "joe@example.com", JOE)
    other = {"identityMap": {"ECID": [{"id": "ecid-joe"}]}}
    with pytest.raises(IdentityConflict) as info:
        async with database.write() as conn:
            await Profiles(conn, sandbox).put("Phone", "+100", other)
    assert (info.value.namespace, info.value.identity) == ("ecid", "ecid-joe")
    async with database.read() as conn:
        assert await Profiles(conn, sandbox).get("Phone", "+100") is None


async def test_merge_and_json_patch(database: Database, sandbox: Sandbox) -> None:
    async with database.write() as conn:
        repo = Profiles(conn, sandbox)
        await repo.put("Email", "joe@example.com", JOE)
        merged = await repo.merge("ecid", "ecid-joe", {"person": {"name": {"lastName": "Doe"}}})
        assert merged["person"]["name"] == {"firstName": "Joe", "lastName": "Doe"}
        assert merged["identityMap"] == JOE["identityMap"]
        patched = await repo.merge(
            "email", "joe@example.com", [{"op": "add", "path": "/person/age", "value": 4}]
        )
        assert patched["person"]["age"] == 4
        with pytest.raises(PatchTestFailed):
            await repo.merge("email", "joe@example.com", [{"op": "test", "path": "/x", "value": 1}])
        with pytest.raises(InvalidProfile):
            await repo.merge("email", "joe@example.com", [{"op": "remove", "path": "/nope"}])
        with pytest.raises(NotFound):
            await repo.merge("email", "nobody@example.com", {"a": 1})


async def test_invalid_bodies(database: Database, sandbox: Sandbox) -> None:
    cases = [
        ([1, 2], ""),
        ({"identityMap": []}, "/identityMap"),
        ({"identityMap": {"Email": {"id": "x"}}}, "/identityMap/Email"),
        ({"identityMap": {"Email": [{"id": ""}]}}, "/identityMap/Email/0/id"),
        (
            {"identityMap": {"Email": [{"id": "a", "primary": "yes"}]}},
            "/identityMap/Email/0/primary",
        ),
        (
            {"segmentMembership": {"ups": {"s": {"status": "gone"}}}},
            "/segmentMembership/ups/s/status",
        ),
    ]
    async with database.write() as conn:
        repo = Profiles(conn, sandbox)
        for body, pointer in cases:
            with pytest.raises(InvalidProfile) as info:
                await repo.put("Email", "a@b.c", body)  # type: ignore[arg-type]
            assert info.value.errors[0].pointer == pointer, body
        with pytest.raises(ProfileTooLarge):
            await repo.put("Email", "a@b.c", {"blob": "x" * (256 * 1024)})
        assert await repo.get("Email", "a@b.c") is None


async def test_delete_removes_every_identity(database: Database, sandbox: Sandbox) -> None:
    async with database.write() as conn:
        repo = Profiles(conn, sandbox)
        await repo.put("Email", "joe@example.com", JOE)
        assert await repo.delete("ECID", "ecid-joe") is True
        assert await repo.get("Email", "joe@example.com") is None
        assert await repo.delete("ECID", "ecid-joe") is False
        # The identities are free again.
        await repo.put("ECID", "ecid-joe", {"x": 1})


async def test_tenancy(database: Database, sandbox: Sandbox) -> None:
    other_org = await _sandbox(database)
    other_sandbox = await _sandbox(database, sandbox.org_id, "dev")
    async with database.write() as conn:
        await Profiles(conn, sandbox).put("Email", "joe@example.com", JOE)
    for foreign in (other_org, other_sandbox):
        async with database.write() as conn:
            repo = Profiles(conn, foreign)
            assert await repo.get("Email", "joe@example.com") is None
            found = await find_profile(
                database, foreign, {"Email": [{"xdm:id": "joe@example.com"}]}
            )
            assert found == ("email:joe@example.com", {})
            assert await repo.delete("Email", "joe@example.com") is False
            with pytest.raises(NotFound):
                await repo.merge("Email", "joe@example.com", {"a": 1})
            # The same identity is free in another tenant.
            await repo.put("Email", "joe@example.com", {"tenant": "other"})
    async with database.read() as conn:
        assert await Profiles(conn, sandbox).get("Email", "joe@example.com") == JOE


async def test_find(database: Database, sandbox: Sandbox) -> None:
    async with database.write() as conn:
        await Profiles(conn, sandbox).put("ECID", "ecid-joe", JOE)

    async def find(identity_map: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        return await find_profile(database, sandbox, identity_map)

    # Primary identity.
    key, body = await find({"Email": [{"xdm:id": "joe@example.com", "primary": True}]})
    assert key == "ecid:ecid-joe"
    assert body["person"]["name"]["firstName"] == "Joe"
    # The primary is unknown; a non-primary one is known: same person, same key.
    key2, body2 = await find(
        {
            "Phone": [{"xdm:id": "+1", "primary": True}],
            "email": [{"id": "joe@example.com"}],
        }
    )
    assert (key2, body2) == (key, body)
    # Unknown everywhere: the primary identity's key and an empty profile.
    assert await find(
        {"Email": [{"xdm:id": "a@b.c"}], "ECID": [{"xdm:id": "E9", "primary": True}]}
    ) == ("ecid:E9", {})
    assert await find({"Email": [{"xdm:id": "a@b.c"}]}) == ("email:a@b.c", {})
    assert await find({}) == (None, {})
    assert await find({"Email": "junk", "x": [1, {"id": 2}]}) == (None, {})


async def test_find_reads_candidates_chunk_by_chunk_in_priority_order(
    database: Database, sandbox: Sandbox
) -> None:
    async with database.write() as conn:
        repo = Profiles(conn, sandbox)
        await repo.put("ECID", "late", {"who": "late"})
        await repo.put("ECID", "later", {"who": "later"})
    unknown = [{"xdm:id": f"nobody-{i}"} for i in range(2 * IDENTITY_CHUNK + 3)]
    # Only the 44th candidate (third chunk) is known: it is found.
    key, body = await find_profile(
        database, sandbox, {"ECID": [*unknown[: 2 * IDENTITY_CHUNK + 3], {"xdm:id": "late"}]}
    )
    assert (key, body["who"]) == ("ecid:late", "late")
    # Known candidates in the second and third chunks: the earlier one wins.
    sent = [*unknown[: IDENTITY_CHUNK + 1], {"xdm:id": "later"}, *unknown, {"xdm:id": "late"}]
    assert (await find_profile(database, sandbox, {"ECID": sent}))[0] == "ecid:later"
    # None known: the first candidate's key, as before.
    assert await find_profile(database, sandbox, {"ECID": unknown}) == ("ecid:nobody-0", {})


async def test_a_profile_holds_at_most_max_identities(database: Database, sandbox: Sandbox) -> None:
    many = [{"id": f"id-{i}"} for i in range(MAX_PROFILE_IDENTITIES)]
    async with database.write() as conn:
        repo = Profiles(conn, sandbox)
        # Linked chunk by chunk; then all of them find the profile.
        await repo.put("ECID", "id-0", {"identityMap": {"ECID": many}})
        with pytest.raises(InvalidProfile) as info:
            await repo.put("ECID", "x", {"identityMap": {"ECID": [*many, {"id": "one-more"}]}})
        assert info.value.errors[0].pointer == "/identityMap"
    found = await find_profile(database, sandbox, {"ECID": [{"xdm:id": "id-999"}]})
    assert found[0] == "ecid:id-0"
    async with database.write() as conn:
        # A second profile claiming one of them, in the last chunk, is a conflict.
        with pytest.raises(IdentityConflict):
            await Profiles(conn, sandbox).put("ECID", "y", {"identityMap": {"ECID": many[-1:]}})


def test_request_identities_order() -> None:
    assert request_identities(
        {
            "A": [{"xdm:id": "1"}, {"xdm:id": "2", "primary": True}],
            "b": [{"id": "3"}, {"id": "1"}],
        }
    ) == [("a", "2"), ("a", "1"), ("b", "3"), ("b", "1")]


async def test_import_with_bad_lines(database: Database, sandbox: Sandbox) -> None:
    lines = [
        orjson.dumps({"identityMap": {"Email": [{"id": f"u{i}@x.io"}]}, "n": i}) for i in range(7)
    ]
    lines.insert(2, b"{not json")
    lines.insert(4, b"")
    lines.insert(5, orjson.dumps({"n": "no identities"}))
    lines.append(
        orjson.dumps({"identityMap": {"ECID": [{"id": "e"}, {"id": "p", "primary": True}]}})
    )
    summary = await import_lines(database, sandbox, iter(lines), batch_size=3)
    assert summary.imported == 8
    assert summary.failed == 2
    assert [e.line for e in summary.errors] == [3, 6]
    async with database.read() as conn:
        repo = Profiles(conn, sandbox)
        assert (await repo.get("email", "u6@x.io"))["n"] == 6  # type: ignore[index]
    assert await find_profile(database, sandbox, {"ECID": [{"xdm:id": "e"}]}) == (
        "ecid:p",
        {"identityMap": {"ECID": [{"id": "e"}, {"id": "p", "primary": True}]}},
    )
