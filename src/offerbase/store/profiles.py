"""Stored profiles: XDM-like JSON bodies of one sandbox, reachable through any of their identities.

A profile body is an object such as::

    {"person": {"name": {"firstName": "Joe"}},
     "identityMap": {"Email": [{"id": "joe@example.com", "primary": true}], "ECID": [{"id": "1"}]},
     "segmentMembership": {"ups": {"<segment id>": {"status": "realized"}}}}

Every identity of `identityMap` (and the identity a write is addressed to, which is added to the
stored `identityMap` when missing) points at the profile; one identity belongs to at most one
profile per sandbox. Namespace codes compare case-insensitively and are stored lower-case;
identity values are case-sensitive.

Every statement goes through the sandbox's `Scope` (store/scope.py), the one place where
tenancy is applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase import catalog
from offerbase.catalog import merge_patch
from offerbase.store.clock import now_iso
from offerbase.store.db import Database
from offerbase.store.errors import InvalidField, InvalidFields, NotFound, StoreError
from offerbase.store.import_plan import ChunkPlan, Identity, ValidLine, plan_chunk
from offerbase.store.scope import Scope, raw_sql
from offerbase.store.tables import profile_identities, profiles
from offerbase.store.tenants import Sandbox

MAX_PROFILE_BYTES = 256 * 1024
MAX_NAMESPACE_CHARS = 255
MAX_IDENTITY_CHARS = 1024
IMPORT_BATCH = 500
# Identities (or profiles) looked up per statement by the import: a chunk of IMPORT_BATCH lines
# takes a few statements, far below any database's limit of bound parameters.
IMPORT_LOOKUP = 500
# Identities a profile may hold (a write with more is a 400 at /identityMap), and how many are
# looked up per statement (a decision's candidates, a write's links): statements stay small and
# their SQL is compiled once per size, whatever a client sends.
MAX_PROFILE_IDENTITIES = 1000
IDENTITY_CHUNK = 20
MAX_IMPORT_ERRORS = 20
SEGMENT_STATUSES = frozenset({"realized", "existing", "exited"})


class InvalidProfile(InvalidFields):
    """The body (or the addressed identity) does not have a profile's shape."""

    status = 400
    title = "Bad Request"


class ProfileTooLarge(StoreError):
    status = 413
    title = "Payload Too Large"


class IdentityConflict(StoreError):
    """An identity of the body already belongs to another profile of the sandbox."""

    status = 409
    title = "Conflict"

    def __init__(self, namespace: str, identity: str) -> None:
        super().__init__(
            f"The identity {namespace}:{identity} already belongs to another profile; "
            "delete it from that profile first."
        )
        self.namespace = namespace
        self.identity = identity


class PatchTestFailed(StoreError):
    status = 409
    title = "Conflict"


@dataclass
class ImportError_:
    line: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "detail": self.detail}


@dataclass
class ImportSummary:
    imported: int = 0
    failed: int = 0
    errors: list[ImportError_] = field(default_factory=list)

    def fail(self, line: int, detail: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_IMPORT_ERRORS:
            self.errors.append(ImportError_(line, detail))

    def add(self, other: ImportSummary) -> None:
        self.imported += other.imported
        for error in other.errors:
            if len(self.errors) < MAX_IMPORT_ERRORS:
                self.errors.append(error)
        self.failed += other.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "failed": self.failed,
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(frozen=True)
class PutResult:
    body: dict[str, Any]
    created: bool


# -- pure helpers ------------------------------------------------------------------------------


def normalize_namespace(namespace: str) -> str:
    return namespace.strip().lower()


def profile_key(namespace: str, identity: str) -> str:
    return f"{normalize_namespace(namespace)}:{identity}"


def _pointer_token(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


def _invalid(pointer: str, message: str) -> InvalidProfile:
    return InvalidProfile(f"{pointer or '/'}: {message}", [InvalidField(pointer, message)])


def check_identity(namespace: Any, identity: Any, pointer: str = "") -> Identity:
    """Validate one (namespace, id) pair; return it with the namespace normalized."""
    ns_pointer = pointer or "namespace"
    id_pointer = pointer + "/id" if pointer else "id"
    if not isinstance(namespace, str) or not namespace.strip():
        raise _invalid(ns_pointer, "The identity namespace must be a non-empty string.")
    if len(namespace) > MAX_NAMESPACE_CHARS or "\x00" in namespace:
        raise _invalid(ns_pointer, f"The namespace is longer than {MAX_NAMESPACE_CHARS} chars.")
    if not isinstance(identity, str) or not identity:
        raise _invalid(id_pointer, "The identity id must be a non-empty string.")
    if len(identity) > MAX_IDENTITY_CHARS:
        raise _invalid(id_pointer, f"The identity id is longer than {MAX_IDENTITY_CHARS} chars.")
    if "\x00" in identity:
        raise _invalid(id_pointer, "The identity id contains a NUL character.")
    return normalize_namespace(namespace), identity


def _entry_id(entry: Mapping[str, Any]) -> Any:
    return entry["id"] if "id" in entry else entry.get("xdm:id")


def body_identities(body: Mapping[str, Any]) -> list[tuple[Identity, bool]]:
    """The identities of a body's identityMap, in order, each with its `primary` flag.

    Raises InvalidProfile naming the offending JSON pointer when the map has the wrong shape.
    """
    identity_map = body.get("identityMap")
    if identity_map is None:
        return []
    if not isinstance(identity_map, dict):
        raise _invalid("/identityMap", "Must be an object of namespace -> list of identities.")
    found: list[tuple[Identity, bool]] = []
    for namespace, entries in identity_map.items():
        pointer = f"/identityMap/{_pointer_token(namespace)}"
        if not isinstance(entries, list):
            raise _invalid(pointer, "Must be an array of identity objects.")
        for index, entry in enumerate(entries):
            entry_pointer = f"{pointer}/{index}"
            if not isinstance(entry, dict):
                raise _invalid(entry_pointer, 'Must be an object such as {"id": "..."}.')
            primary = entry.get("primary", False)
            if not isinstance(primary, bool):
                raise _invalid(entry_pointer + "/primary", "Must be a boolean.")
            found.append((check_identity(namespace, _entry_id(entry), entry_pointer), primary))
            if len(found) > MAX_PROFILE_IDENTITIES:
                raise _invalid(
                    "/identityMap",
                    f"A profile has at most {MAX_PROFILE_IDENTITIES} identities.",
                )
    return found


def _check_segments(body: Mapping[str, Any]) -> None:
    membership = body.get("segmentMembership")
    if membership is None:
        return
    if not isinstance(membership, dict):
        raise _invalid("/segmentMembership", "Must be an object of namespace -> segments.")
    for namespace, segments in membership.items():
        pointer = f"/segmentMembership/{_pointer_token(namespace)}"
        if not isinstance(segments, dict):
            raise _invalid(pointer, "Must be an object of segment id -> membership.")
        for segment_id, membership_of in segments.items():
            seg_pointer = f"{pointer}/{_pointer_token(segment_id)}"
            if not isinstance(membership_of, dict):
                raise _invalid(seg_pointer, 'Must be an object such as {"status": "realized"}.')
            status = membership_of.get("status")
            if status is not None and status not in SEGMENT_STATUSES:
                raise _invalid(
                    seg_pointer + "/status", "Must be one of realized, existing, exited."
                )


def prepare_body(
    namespace: str,
    identity: str,
    body: Any,
    listed: list[tuple[Identity, bool]] | None = None,
) -> tuple[dict[str, Any], list[Identity]]:
    """Validate a body addressed to (namespace, identity).

    Returns the body to store (the addressed identity added to identityMap when missing) and all
    of its identities, the addressed one first, without duplicates. `listed`: the body's
    `body_identities`, when the caller has them already (the import).
    """
    path_identity = check_identity(namespace, identity)
    if not isinstance(body, dict):
        raise _invalid("", "A profile must be a JSON object.")
    if listed is None:
        listed = body_identities(body)
    _check_segments(body)
    stored = dict(body)
    if path_identity not in {ident for ident, _ in listed}:
        identity_map = dict(stored.get("identityMap") or {})
        key = next(
            (k for k in identity_map if normalize_namespace(k) == path_identity[0]), namespace
        )
        identity_map[key] = [*identity_map.get(key, []), {"id": identity}]
        stored["identityMap"] = identity_map
    try:
        encoded = orjson.dumps(stored)
    except TypeError as exc:
        raise _invalid("", f"The profile is not JSON: {exc}.") from exc
    if len(encoded) > MAX_PROFILE_BYTES:
        raise ProfileTooLarge(
            f"The profile is {len(encoded)} bytes as JSON; the limit is {MAX_PROFILE_BYTES}."
        )
    if b"\\u0000" in encoded:
        raise _invalid("", "The profile contains a NUL character (\\u0000).")
    # dict.fromkeys: de-duplicated in order, in linear time
    identities = list(dict.fromkeys([path_identity, *(ident for ident, _primary in listed)]))
    return stored, identities


def apply_patch(body: dict[str, Any], patch: Any) -> Any:
    """A merge patch (object) or a JSON Patch (array of operations), the catalog's bounded
    implementation: what a JSON Patch writes adds up to at most MAX_PROFILE_BYTES, so `copy`
    cannot amplify a profile in memory before its size is checked."""
    if isinstance(patch, dict):
        return merge_patch(body, patch)
    try:
        return catalog.apply_patch(body, patch, max_written=MAX_PROFILE_BYTES)
    except catalog.PatchTestFailed as exc:
        raise PatchTestFailed(f"A 'test' operation failed: {exc.message}") from exc
    except catalog.PatchTooLarge as exc:
        raise ProfileTooLarge(exc.message) from exc
    except catalog.PatchError as exc:
        raise _invalid(exc.pointer, f"The JSON Patch cannot be applied: {exc.message}") from exc


def request_identities(identity_map: Any) -> list[Identity]:
    """A decision request's `xdm:identityMap`, primary identity first, then the others in order.

    Entries may carry `xdm:id` or `id` (and `primary` or `xdm:primary`); malformed entries are
    skipped, so a decision never fails on an identity it cannot use.
    """
    if not isinstance(identity_map, Mapping):
        return []
    primary: list[Identity] = []
    others: list[Identity] = []
    for namespace, entries in identity_map.items():
        if not isinstance(namespace, str) or not namespace.strip():
            continue
        if isinstance(entries, Mapping):
            entries = [entries]
        if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            value = entry.get("xdm:id", entry.get("id"))
            if not isinstance(value, str) or not value:
                continue
            ident = (normalize_namespace(namespace), value)
            is_primary = entry.get("primary", entry.get("xdm:primary")) is True
            (primary if is_primary else others).append(ident)
    return list(dict.fromkeys(primary + others))  # de-duplicated in order, in linear time


# Profile identities joined to their profile: the lookups of a decision and of the repository.
_BY_IDENTITY = profile_identities.join(profiles, profiles.c.pk == profile_identities.c.profile_pk)


def _identity_is(namespace: Any, identity: Any) -> sa.ColumnElement[bool]:
    return sa.and_(
        profile_identities.c.namespace == namespace, profile_identities.c.identity == identity
    )


@lru_cache(maxsize=IDENTITY_CHUNK)
def _find_sql(count: int) -> str:
    """The lookup of `count` candidate identities (`:ns<i>`, `:id<i>`), compiled once per count."""
    query = (
        sa.select(
            profile_identities.c.namespace,
            profile_identities.c.identity,
            profiles.c.profile_key,
            profiles.c.body,
        )
        .select_from(_BY_IDENTITY)
        .where(
            sa.or_(
                *(
                    _identity_is(sa.bindparam(f"ns{i}"), sa.bindparam(f"id{i}"))
                    for i in range(count)
                )
            )
        )
    )
    return raw_sql(query)


async def find_profile(
    db: Database, sandbox: Sandbox, identity_map: Mapping[str, Sequence[Mapping[str, Any]]]
) -> tuple[str | None, dict[str, Any]]:
    """Resolve a decision request's identityMap to (profile key, profile body).

    The primary identity is tried first, then the others in order. A stored profile answers
    with its own key (the same whichever of its identities is sent); when no identity is
    known the answer is the key of the primary (else first) identity and an empty profile,
    and (None, {}) when the map holds no usable identity.

    On the decisioning hot path: plain SQL on the database's fastest read path (no expression
    building per request), so it sees committed profiles only.
    """
    candidates = request_identities(identity_map)
    if not candidates:
        return None, {}
    # In chunks, in priority order: the first chunk that finds anything holds the answer (the
    # earliest candidate found), so a usual request takes one round trip however many it sends.
    for start in range(0, len(candidates), IDENTITY_CHUNK):
        chunk = candidates[start : start + IDENTITY_CHUNK]
        params = Scope.of(sandbox).params()
        for index, (namespace, value) in enumerate(chunk):
            params[f"ns{index}"], params[f"id{index}"] = namespace, value
        found = {}
        for namespace, identity, key, body in await db.point_read(_find_sql(len(chunk)), params):
            found[(namespace, identity)] = (key, body)
        for candidate in chunk:
            if candidate in found:
                key, body = found[candidate]
                return key, orjson.loads(body) if isinstance(body, str | bytes) else dict(body)
    ns, value = candidates[0]
    return f"{ns}:{value}", {}


# -- the repository ----------------------------------------------------------------------------


class Profiles:
    """Profile operations inside one sandbox; the caller supplies the transaction."""

    def __init__(self, conn: AsyncConnection, sandbox: Sandbox) -> None:
        self.conn = conn
        self.sandbox = sandbox
        self.scope = Scope.of(sandbox)

    # -- reads ---------------------------------------------------------------------------

    async def _owner(self, namespace: str, identity: str) -> sa.Row[Any] | None:
        """(pk, profile_key, body) of the profile an identity belongs to."""
        query = (
            sa.select(profiles.c.pk, profiles.c.profile_key, profiles.c.body)
            .select_from(_BY_IDENTITY)
            .where(_identity_is(normalize_namespace(namespace), identity))
        )
        return (await self.conn.execute(self.scope.apply(query))).first()

    async def get(self, namespace: str, identity: str) -> dict[str, Any] | None:
        if not isinstance(namespace, str) or not isinstance(identity, str):
            return None
        row = await self._owner(namespace, identity)
        return None if row is None else dict(row.body)

    # -- writes --------------------------------------------------------------------------

    async def put(self, namespace: str, identity: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the profile addressed by (namespace, identity); the stored body."""
        return (await self.upsert(namespace, identity, body)).body

    async def upsert(self, namespace: str, identity: str, body: Any) -> PutResult:
        stored, identities = prepare_body(namespace, identity, body)
        owner = await self._owner(namespace, identity)
        return await self._save(owner, stored, identities)

    async def merge(self, namespace: str, identity: str, patch: Any) -> dict[str, Any]:
        """Apply an RFC 7396 merge patch (object) or RFC 6902 JSON Patch (array)."""
        owner = await self._owner(namespace, identity) if isinstance(identity, str) else None
        if owner is None:
            raise NotFound(f"No profile with identity {profile_key(namespace, identity)}.")
        patched = apply_patch(dict(owner.body), patch)
        stored, identities = prepare_body(namespace, identity, patched)
        return (await self._save(owner, stored, identities)).body

    async def delete(self, namespace: str, identity: str) -> bool:
        owner = await self._owner(namespace, identity) if isinstance(identity, str) else None
        if owner is None:
            return False
        unlink = profile_identities.delete().where(profile_identities.c.profile_pk == owner.pk)
        await self.conn.execute(self.scope.apply(unlink))
        await self.conn.execute(
            self.scope.apply(profiles.delete().where(profiles.c.pk == owner.pk))
        )
        return True

    async def _save(
        self, owner: sa.Row[Any] | None, stored: dict[str, Any], identities: list[Identity]
    ) -> PutResult:
        """Write `stored` into `owner` (or a new profile); link exactly `identities` to it."""
        own_pk = None if owner is None else owner.pk
        columns = (
            profile_identities.c.namespace,
            profile_identities.c.identity,
            profile_identities.c.profile_pk,
        )
        owned = profile_identities.c.profile_pk == (own_pk if own_pk is not None else -1)
        current: set[Identity] = set()
        # The profile's own links and the wanted identities, chunk by chunk (a wanted identity
        # linked to another profile is a conflict); one statement for up to IDENTITY_CHUNK.
        wheres = [
            sa.or_(
                owned if i == 0 else sa.false(),
                *(_identity_is(ns, value) for ns, value in identities[i : i + IDENTITY_CHUNK]),
            )
            for i in range(0, len(identities), IDENTITY_CHUNK)
        ]
        for where in wheres:
            linked = await self.conn.execute(self.scope.apply(sa.select(*columns).where(where)))
            for row in linked:
                if row.profile_pk != own_pk:
                    raise IdentityConflict(row.namespace, row.identity)
                current.add((row.namespace, row.identity))
        now = now_iso()
        path_key = f"{identities[0][0]}:{identities[0][1]}"
        if owner is None:
            insert = (
                profiles.insert()
                .values(profile_key=path_key, body=stored, created=now, modified=now)
                .returning(profiles.c.pk)
            )
            own_pk = await self.conn.scalar(self.scope.apply(insert))
        else:
            # The capping key stays while its identity belongs to the profile.
            key_ns, _, key_id = str(owner.profile_key).partition(":")
            key = owner.profile_key if (key_ns, key_id) in identities else path_key
            update = (
                profiles.update()
                .where(profiles.c.pk == own_pk)
                .values(body=stored, modified=now, profile_key=key)
            )
            await self.conn.execute(self.scope.apply(update))
        wanted = set(identities)
        for ns, value in current - wanted:
            unlink = profile_identities.delete().where(_identity_is(ns, value))
            await self.conn.execute(self.scope.apply(unlink))
        new = [ident for ident in identities if ident not in current]
        if new:
            try:
                async with self.conn.begin_nested():
                    await self.conn.execute(
                        self.scope.apply(profile_identities.insert()),
                        [
                            {
                                "namespace": ns,
                                "identity": value,
                                "profile_pk": own_pk,
                            }
                            for ns, value in new
                        ],
                    )
            except sa.exc.IntegrityError as exc:
                # Another transaction linked one of them meanwhile (PostgreSQL).
                ns, value = new[0]
                raise IdentityConflict(ns, value) from exc
        return PutResult(stored, owner is None)

    # -- bulk ----------------------------------------------------------------------------

    async def import_ndjson(
        self, lines: Iterable[str | bytes], *, first_line: int = 1
    ) -> ImportSummary:
        """Create or replace one profile per non-blank line, inside the caller's transaction.

        Each line is a profile body; its primary identity (else its first) addresses it. A bad
        line is reported with its number and skipped. Lines are written IMPORT_BATCH at a time
        with a few bulk statements (`_import_chunk`), with the result of importing them one by
        one; a chunk the database refuses is rolled back and imported again line by line.
        """
        summary = ImportSummary()
        chunk: list[tuple[int, str | bytes]] = []
        for number, line in enumerate(lines, start=first_line):
            chunk.append((number, line))
            if len(chunk) >= IMPORT_BATCH:
                summary.add(await self._import_chunk(chunk))
                chunk = []
        if chunk:
            summary.add(await self._import_chunk(chunk))
        return summary

    async def _import_chunk(self, chunk: list[tuple[int, str | bytes]]) -> ImportSummary:
        failures: list[tuple[int, str]] = []
        valid: list[ValidLine] = []
        # Every line is checked before any SQL, so a bad line fails alone.
        for number, line in chunk:
            try:
                checked = _checked_line(number, line)
            except StoreError as exc:
                failures.append((number, exc.detail))
            else:
                if checked is not None:
                    valid.append(checked)
        try:
            async with self.conn.begin_nested():
                plan = plan_chunk(valid, *await self._stored_links(valid))
                await self._write_plan(plan)
        except (sa.exc.IntegrityError, sa.exc.DataError):
            # Refused by the database (another transaction linked one of the identities
            # meanwhile, on PostgreSQL): line by line, each line fails or succeeds alone.
            return await self._import_one_by_one(chunk)
        for number, (ns, value) in plan.conflicts:
            failures.append((number, IdentityConflict(ns, value).detail))
        summary = ImportSummary(imported=plan.imported)
        for number, detail in sorted(failures):
            summary.fail(number, detail)
        return summary

    async def _stored_links(
        self, lines: list[ValidLine]
    ) -> tuple[dict[Identity, int], dict[int, str]]:
        """Who owns the identities the lines name, every identity of those profiles, and their
        profile_key; in statements of at most IMPORT_LOOKUP identities or profiles."""
        by_namespace: dict[str, set[str]] = {}
        for line in lines:
            for ns, value in line.identities:
                by_namespace.setdefault(ns, set()).add(value)
        owner_pks: set[int] = set()
        for ns, values in by_namespace.items():
            ordered = sorted(values)
            for start in range(0, len(ordered), IMPORT_LOOKUP):
                query = sa.select(profile_identities.c.profile_pk).where(
                    profile_identities.c.namespace == ns,
                    profile_identities.c.identity.in_(ordered[start : start + IMPORT_LOOKUP]),
                )
                owner_pks.update(await self.conn.scalars(self.scope.apply(query)))
        owners: dict[Identity, int] = {}
        keys: dict[int, str] = {}
        pks = sorted(owner_pks)
        for start in range(0, len(pks), IMPORT_LOOKUP):
            query = (
                sa.select(
                    profile_identities.c.namespace,
                    profile_identities.c.identity,
                    profile_identities.c.profile_pk,
                    profiles.c.profile_key,
                )
                .select_from(_BY_IDENTITY)
                .where(profile_identities.c.profile_pk.in_(pks[start : start + IMPORT_LOOKUP]))
            )
            for row in await self.conn.execute(self.scope.apply(query)):
                owners[(row.namespace, row.identity)] = row.profile_pk
                keys[row.profile_pk] = row.profile_key
        return owners, keys

    async def _write_plan(self, plan: ChunkPlan) -> None:
        """A chunk's plan in bulk: drop links, create and replace profiles, add links."""
        now = now_iso()
        if plan.unlinked:
            unlink = profile_identities.delete().where(
                _identity_is(sa.bindparam("u_ns"), sa.bindparam("u_id"))
            )
            await self.conn.execute(
                self.scope.apply(unlink),
                [{"u_ns": ns, "u_id": value} for ns, value in plan.unlinked],
            )
        real_pk: dict[int, int] = {}
        if plan.created:
            placeholders = list(plan.created)
            insert = profiles.insert().returning(profiles.c.pk, sort_by_parameter_order=True)
            created = await self.conn.execute(
                self.scope.apply(insert),
                [
                    {"profile_key": key, "body": body, "created": now, "modified": now}
                    for key, body in plan.created.values()
                ],
            )
            real_pk = dict(zip(placeholders, created.scalars(), strict=True))
        if plan.replaced:
            update = (
                profiles.update()
                .where(profiles.c.pk == sa.bindparam("r_pk"))
                .values(
                    body=sa.bindparam("r_body"),
                    profile_key=sa.bindparam("r_key"),
                    modified=now,
                )
            )
            await self.conn.execute(
                self.scope.apply(update),
                [
                    {"r_pk": pk, "r_key": key, "r_body": body}
                    for pk, (key, body) in plan.replaced.items()
                ],
            )
        if plan.linked:
            await self.conn.execute(
                self.scope.apply(profile_identities.insert()),
                [
                    {"namespace": ns, "identity": value, "profile_pk": real_pk.get(pk, pk)}
                    for (ns, value), pk in plan.linked
                ],
            )

    async def _import_one_by_one(self, chunk: list[tuple[int, str | bytes]]) -> ImportSummary:
        """The chunk as single upserts, each in its own savepoint."""
        summary = ImportSummary()
        for number, line in chunk:
            try:
                checked = _checked_line(number, line)
                if checked is None:
                    continue
                async with self.conn.begin_nested():
                    owner = await self._owner(*checked.identities[0])
                    await self._save(owner, checked.body, checked.identities)
            except StoreError as exc:
                summary.fail(number, exc.detail)
            else:
                summary.imported += 1
        return summary


class BadLine(StoreError):
    """An NDJSON line that is not JSON, or too long to read."""


def _checked_line(number: int, line: str | bytes) -> ValidLine | None:
    """A line's body and identities, validated; None for a blank line. Raises StoreError."""
    if isinstance(line, LineTooLong):
        raise BadLine(str(line))
    if not line.strip():
        return None
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"Not valid JSON: {exc}.") from exc
    listed = _import_listed(body)
    namespace, identity = _addressed(body, listed)
    stored, identities = prepare_body(namespace, identity, body, listed)
    return ValidLine(number, stored, identities)


class LineTooLong(str):
    """Stands in for an NDJSON line that was too long to read (reported as a failed line)."""

    __slots__ = ()


def import_identity(body: Any) -> Identity:
    """The identity an imported body is addressed to: its primary identity, else its first."""
    return _addressed(body, _import_listed(body))


def _import_listed(body: Any) -> list[tuple[Identity, bool]]:
    if not isinstance(body, dict):
        raise _invalid("", "Each line must be a profile object.")
    listed = body_identities(body)
    if not listed:
        raise _invalid("/identityMap", "An imported profile needs at least one identity.")
    return listed


def _addressed(body: dict[str, Any], listed: list[tuple[Identity, bool]]) -> Identity:
    (namespace, identity), _ = next((item for item in listed if item[1]), listed[0])
    # Address it with the namespace as spelled in the body (same identity, normalized later).
    spelled = next(k for k in body["identityMap"] if normalize_namespace(k) == namespace)
    return spelled, identity


async def import_lines(
    db: Database,
    sandbox: Sandbox,
    lines: Iterable[str | bytes] | AsyncIterator[str | bytes],
    *,
    batch_size: int = IMPORT_BATCH,
) -> ImportSummary:
    """Import NDJSON profiles with one write transaction per batch of `batch_size` lines."""
    summary = ImportSummary()
    batch: list[str | bytes] = []
    first = 1
    batches = 0

    async def flush() -> None:
        nonlocal first, batches
        if batch:
            async with db.write() as conn:
                summary.add(await Profiles(conn, sandbox).import_ndjson(batch, first_line=first))
            batches += 1
            if batches & (batches - 1) == 0 and len(batch) >= batch_size:
                # A long import: the planner must know how many rows the tables hold now
                # (db.refresh_statistics), each time the import has doubled.
                await db.refresh_statistics((profiles, profile_identities))
            first += len(batch)
            batch.clear()

    if hasattr(lines, "__aiter__"):
        async for line in lines:
            batch.append(line)
            if len(batch) >= batch_size:
                await flush()
    else:
        for line in lines:
            batch.append(line)
            if len(batch) >= batch_size:
                await flush()
    await flush()
    return summary


async def profile_page(
    conn: AsyncConnection, sandbox: Sandbox, after_pk: int, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    """(pk, body) of the sandbox's profiles after `after_pk`, in pk order, at most `limit`
    (1..IMPORT_BATCH): a batch job reads a whole sandbox page by page, in bounded memory."""
    limit = max(1, min(limit, IMPORT_BATCH))
    query = (
        sa.select(profiles.c.pk, profiles.c.body)
        .where(profiles.c.pk > after_pk)
        .order_by(profiles.c.pk)
        .limit(limit)
    )
    rows = (await conn.execute(Scope.of(sandbox).apply(query))).all()
    return [
        (int(pk), orjson.loads(body) if isinstance(body, str | bytes) else dict(body))
        for pk, body in rows
    ]
