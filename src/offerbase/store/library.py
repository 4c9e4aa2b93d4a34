"""The Offer Library: create, read, update, delete and list catalog entities of one sandbox.

Every statement here goes through the sandbox's `Scope` (store/scope.py), the one place where
tenancy is applied, so no query can forget it.

Writes are serialized per sandbox: each write transaction first increments the sandbox's
catalog version (a row lock on PostgreSQL, the database write lock on SQLite). That version
stamps the new entity rows, so a list can read the catalog exactly as it was at one version.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase import catalog
from offerbase.catalog.patch import json_equal
from offerbase.store import guardrails, notify
from offerbase.store.clock import iso, now_iso
from offerbase.store.db import Database
from offerbase.store.errors import (
    AlreadyExists,
    BadCursor,
    InvalidField,
    NotFound,
    PreconditionFailed,
    Referrer,
    StillReferenced,
    StoreError,
    Unprocessable,
)
from offerbase.store.listing import Dialect, OrderKey, RegexTerm, Term, split_regex_terms
from offerbase.store.scope import Scope, raw_sql
from offerbase.store.tables import (
    NAME_CHARS,
    alive_entities,
    entities,
    entity_history,
    references,
    sandboxes,
)
from offerbase.store.tenants import Sandbox

# Superseded entity versions are kept this long so that paging cursors stay exact.
CURSOR_TTL = timedelta(hours=1)
_PRUNE_EVERY = 100
MAX_ID_LENGTH = 255  # entities.entity_id is String(255)
MAX_CURSOR_OFFSET = 2**31  # far past any sandbox's guardrails (10,000 entities of a kind)
MAX_HISTORY = 200  # versions one history read returns (the newest)


@dataclass(frozen=True)
class Actor:
    """Who writes: the API credential's client id (and the user it acts for)."""

    user: str
    client_id: str


@dataclass(frozen=True)
class Entity:
    kind: str
    id: str
    body: dict[str, Any]
    etag: int
    created: str
    modified: str
    created_by: str
    modified_by: str
    created_client: str
    modified_client: str

    def read_form(self) -> dict[str, Any]:
        form = dict(self.body)
        form.update(
            id=self.id,
            etag=self.etag,
            created=self.created,
            modified=self.modified,
            createdBy=self.created_by,
            lastModifiedBy=self.modified_by,
            schemas=[catalog.KINDS[self.kind].schema_uri],
        )
        return form

    def receipt(self, sandbox: Sandbox) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "createdBy": self.created_by,
            "lastModifiedBy": self.modified_by,
            "id": self.id,
            "sandboxId": sandbox.sandbox_id,
            "createdDate": self.created,
            "lastModifiedDate": self.modified,
            "createdByClientId": self.created_client,
            "lastModifiedByClientId": self.modified_client,
        }


# What an update does to the current body (a JSON Patch, a merge patch, or a replacement).
Transform = Callable[[dict[str, Any]], object]


@dataclass(frozen=True)
class Draft:
    """An update's validated new body and the body it was computed from (`Library.draft`)."""

    kind: str
    source: dict[str, Any]
    body: dict[str, Any]


# `list` is also a method name below: these aliases keep the annotations unambiguous.
_Where = Sequence[sa.ColumnElement[bool]]
_OrderBy = Sequence[sa.UnaryExpression[Any] | sa.ColumnElement[Any]]


@dataclass(frozen=True)
class Page:
    items: list[Entity]
    total: int
    next_cursor: str | None
    prev_cursor: str | None
    self_cursor: str | None


@dataclass(frozen=True)
class Version:
    """One entry of an entity's history (store/tables.py `entity_history`)."""

    number: int  # the history row: increasing, unique in the sandbox
    kind: str
    id: str
    action: str  # created | updated | deleted
    etag: int
    body: dict[str, Any] | None  # None for a deletion
    at: str
    by_user: str
    by_client: str


# The sandbox's catalog version: on the decision path (api/snapshots.py polls it), so plain SQL.
_CATALOG_VERSION = raw_sql(sa.select(sandboxes.c.catalog_version))


async def catalog_version(db: Database, sandbox: Sandbox) -> int:
    """The sandbox's catalog version, read on the database's point-read path."""
    rows = await db.point_read(_CATALOG_VERSION, Scope.of(sandbox).params())
    return int(rows[0][0]) if rows else 0


async def last_changes(conn: AsyncConnection, sandbox: Sandbox) -> dict[str, str]:
    """Per entity kind, when the sandbox's catalog last changed (a write, or a delete)."""
    # A version's closed_at is when a write or a delete replaced it; a current one has none.
    changed = sa.func.max(sa.func.coalesce(entities.c.closed_at, entities.c.modified))
    query = sa.select(entities.c.kind, changed).group_by(entities.c.kind)
    rows = (await conn.execute(Scope.of(sandbox).apply(query))).all()
    return {str(kind): str(when) for kind, when in rows}


def _entity(row: sa.Row[Any]) -> Entity:
    return Entity(
        kind=row.kind,
        id=row.entity_id,
        body=dict(row.body),
        etag=row.etag,
        created=row.created,
        modified=row.modified,
        created_by=row.created_by,
        modified_by=row.modified_by,
        created_client=row.created_client,
        modified_client=row.modified_client,
    )


def _storable_id(entity_id: str) -> bool:
    """Ids fit the entity_id column and hold no U+0000 (which PostgreSQL cannot store)."""
    return 0 < len(entity_id) <= MAX_ID_LENGTH and "\x00" not in entity_id


def _etag_matches(if_match: str | None, etag: int) -> bool:
    if if_match is None:
        return True
    for candidate in if_match.split(","):
        value = candidate.strip()
        if value == "*":
            return True
        value = value.removeprefix("W/").strip('"')
        if value == str(etag):
            return True
    return False


class Library:
    """Catalog operations inside one sandbox; the caller supplies the transaction."""

    def __init__(self, conn: AsyncConnection, sandbox: Sandbox) -> None:
        self.conn = conn
        self.sandbox = sandbox
        self.scope = Scope.of(sandbox)
        self.dialect = Dialect(conn.dialect.name == "sqlite")

    # -- reads -------------------------------------------------------------------------

    async def get(self, kinds: Sequence[str], entity_id: str) -> Entity:
        row = None
        # An id that could not have been stored is not looked up (PostgreSQL rejects U+0000).
        if _storable_id(entity_id):
            query = sa.select(entities).where(
                alive_entities(), entities.c.entity_id == entity_id, entities.c.kind.in_(kinds)
            )
            row = (await self.conn.execute(self.scope.apply(query))).first()
        if row is None:
            raise NotFound(f"No {' or '.join(kinds)} with id '{entity_id}' in this sandbox.")
        return _entity(row)

    async def version(self) -> int:
        value = await self.conn.scalar(self.scope.apply(sa.select(sandboxes.c.catalog_version)))
        return int(value or 0)

    async def current_bodies(self) -> tuple[int, dict[str, list[dict[str, Any]]]]:
        """The whole current catalog (bodies with id and etag), for the decisioning snapshot."""
        version = await self.version()
        query = sa.select(
            entities.c.kind, entities.c.entity_id, entities.c.etag, entities.c.body
        ).where(alive_entities(version))
        rows = await self.conn.execute(self.scope.apply(query))
        by_kind: dict[str, list[dict[str, Any]]] = {name: [] for name in catalog.KINDS}
        for row in rows:
            body = dict(row.body)
            body["id"] = row.entity_id
            body["etag"] = row.etag
            by_kind[row.kind].append(body)
        return version, by_kind

    async def names(self, kinds: Sequence[str], limit: int) -> list[tuple[str, str, str]]:
        """(kind, id, name) of the first `limit` current entities of `kinds` by name, then id:
        what a menu shows, from the name column (cut at NAME_CHARS characters), with no body
        and no count. The order is `list`'s by name (the column sorts as the body's name)."""
        query = (
            sa.select(entities.c.kind, entities.c.entity_id, entities.c.name)
            .where(alive_entities(), entities.c.kind.in_(kinds))
            .order_by(entities.c.name.asc().nulls_first(), entities.c.entity_id.asc())
            .limit(limit)
        )
        rows = await self.conn.execute(self.scope.apply(query))
        return [(row.kind, row.entity_id, row.name or row.entity_id) for row in rows]

    async def list(
        self,
        kinds: Sequence[str],
        terms: Sequence[Term],
        order: Sequence[OrderKey],
        limit: int,
        cursor: str | None,
    ) -> Page:
        if cursor is None:
            as_of, offset = await self.version(), 0
        else:
            as_of, offset = self._decode_cursor(cursor)
        sql_terms, regex_terms = split_regex_terms(terms)
        where = [alive_entities(as_of), entities.c.kind.in_(kinds)]
        where += [self.dialect.condition(term) for term in sql_terms]
        order_by: list[sa.UnaryExpression[Any] | sa.ColumnElement[Any]] = []
        for key in order:
            expr = self.dialect.order_expr(key.field)
            order_by.append(
                expr.desc().nulls_last() if key.descending else expr.asc().nulls_first()
            )
        order_by.append(entities.c.entity_id.asc())
        if regex_terms:
            rows, total = await self._page_regex(where, order_by, regex_terms, limit, offset)
        elif self.dialect.is_sqlite:
            rows, total = await self._page_sqlite(where, order_by, limit, offset)
        else:
            rows, total = await self._page_windowed(where, order_by, limit, offset)
        items = [_entity(row) for row in rows]
        next_cursor = (
            self._encode_cursor(as_of, offset + limit) if offset + len(items) < total else None
        )
        prev_cursor = self._encode_cursor(as_of, max(0, offset - limit)) if offset > 0 else None
        self_cursor = cursor
        return Page(items, total, next_cursor, prev_cursor, self_cursor)

    # The filters evaluate JSON per row, the dominant cost of a list (bench/catalog.py), so the
    # page and the total come from one pass over the matches, not a page query and a count.
    async def _page_windowed(
        self, where: _Where, order_by: _OrderBy, limit: int, offset: int
    ) -> tuple[Sequence[sa.Row[Any]], int]:
        """PostgreSQL: the page's row ids with count(*) OVER () (the total of all matches),
        then its rows by id: whole rows (their bodies) carried through the window and the sort
        cost 3 to 4 times as much at 10,000 offers."""
        query = (
            sa.select(entities.c.row_id, sa.func.count().over().label("_total"))
            .where(*where)
            .order_by(*order_by)
            .limit(limit)
            .offset(offset)
        )
        keys = (await self.conn.execute(self.scope.apply(query))).all()
        if keys:
            return await self._rows_by_id([key.row_id for key in keys]), int(keys[0]._total)
        # Past the end (or no match): the total still has to be counted.
        count = sa.select(sa.func.count()).select_from(entities).where(*where)
        total = await self.conn.scalar(self.scope.apply(count))
        return [], int(total or 0)

    async def _page_regex(
        self,
        where: _Where,
        order_by: _OrderBy,
        regex_terms: Sequence[RegexTerm],
        limit: int,
        offset: int,
    ) -> tuple[Sequence[sa.Row[Any]], int]:
        """Either backend, with `~` terms: the other terms select the candidates in SQL, in
        order, with the text of each `~` field; RE2 keeps those every pattern accepts, then the
        page's rows are read by id. A sandbox's guardrails bound the candidates (10,000 offers
        at most), and RE2 is linear in each value."""
        columns: list[sa.ColumnElement[Any]] = []
        for term in regex_terms:
            columns.extend(term.columns(self.dialect))
        query = sa.select(entities.c.row_id, *columns).where(*where).order_by(*order_by)
        candidates = (await self.conn.execute(self.scope.apply(query))).all()
        kept = [
            row[0]
            for row in candidates
            if all(
                term.accepts(row[1 + 2 * index], row[2 + 2 * index])
                for index, term in enumerate(regex_terms)
            )
        ]
        return await self._rows_by_id(kept[offset : offset + limit]), len(kept)

    async def _rows_by_id(self, chosen: Sequence[int]) -> Sequence[sa.Row[Any]]:
        """The rows of `chosen` (row ids), in that order."""
        if not chosen:
            return []
        by_id = sa.select(entities).where(entities.c.row_id.in_(chosen))
        found = await self.conn.execute(
            self.scope.apply(by_id, sqlite_likely=self.dialect.is_sqlite)
        )
        position = {row_id: index for index, row_id in enumerate(chosen)}
        return sorted(found.all(), key=lambda row: position[row.row_id])

    async def _page_sqlite(
        self, where: _Where, order_by: _OrderBy, limit: int, offset: int
    ) -> tuple[Sequence[sa.Row[Any]], int]:
        """SQLite: the ordered row ids of every match (SQLite's window pass costs as much as a
        second query), then the page's rows by id. A sandbox's guardrails bound the matches."""
        query = sa.select(entities.c.row_id).where(*where).order_by(*order_by)
        keys = (await self.conn.execute(self.scope.apply(query))).scalars().all()
        return await self._rows_by_id(keys[offset : offset + limit]), len(keys)

    # Paging reads one immutable version of the catalog, so an offset into it is exact:
    # concurrent writes create new versions and never move rows of the version being paged.
    @staticmethod
    def _encode_cursor(as_of: int, offset: int) -> str:
        stamp = int(datetime.now(UTC).timestamp())
        raw = f"{as_of}.{offset}.{stamp}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_cursor(self, cursor: str) -> tuple[int, int]:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            as_of_text, offset_text, stamp_text = (
                base64.urlsafe_b64decode(padded).decode().split(".")
            )
            as_of, offset, stamp = int(as_of_text), int(offset_text), int(stamp_text)
            # Range-checked although the API signs cursors: a value past a 64-bit column would
            # fail in the database (a 500), not here.
            if not (0 <= as_of < 2**63 and 0 <= offset < MAX_CURSOR_OFFSET and 0 <= stamp < 2**40):
                raise ValueError(cursor)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise BadCursor("The 'start' cursor is not one this server issued.") from exc
        issued = datetime.fromtimestamp(stamp, UTC)
        if datetime.now(UTC) - issued > CURSOR_TTL - timedelta(minutes=5):
            raise BadCursor("The 'start' cursor has expired; list again from the first page.")
        return as_of, offset

    # -- writes ------------------------------------------------------------------------

    async def _next_version(self) -> int:
        bump = (
            sandboxes.update()
            .values(catalog_version=sandboxes.c.catalog_version + 1)
            .returning(sandboxes.c.catalog_version)
        )
        version = await self.conn.scalar(self.scope.apply(bump))
        assert version is not None
        if not self.dialect.is_sqlite:  # other workers hear of it when this commits
            await self.conn.execute(notify.catalog_changed(self.sandbox.pk))
        if version % _PRUNE_EVERY == 0:
            await self._prune_history()
        return int(version)

    async def _prune_history(self) -> None:
        horizon = iso(datetime.now(UTC) - CURSOR_TTL)
        closed = entities.delete().where(
            entities.c.valid_to.is_not(None), entities.c.closed_at < horizon
        )
        await self.conn.execute(self.scope.apply(closed))

    async def _check_references(
        self, kind: str, entity_id: str, body: Mapping[str, Any]
    ) -> Sequence[catalog.Reference]:
        refs = catalog.references(kind, dict(body))
        if not refs:
            return refs
        wanted = {ref.id for ref in refs}
        query = sa.select(entities.c.entity_id, entities.c.kind).where(
            alive_entities(), entities.c.entity_id.in_(wanted)
        )
        rows = await self.conn.execute(self.scope.apply(query))
        found = {row.entity_id: row.kind for row in rows}
        problems = []
        for ref in refs:
            found_kind = found.get(ref.id)
            if ref.id == entity_id and kind in ref.kinds:
                continue
            if found_kind is None:
                problems.append(
                    InvalidField(
                        ref.pointer,
                        f"No {' or '.join(ref.kinds)} with id '{ref.id}' exists in this sandbox.",
                    )
                )
            elif found_kind not in ref.kinds:
                problems.append(
                    InvalidField(
                        ref.pointer,
                        f"'{ref.id}' is a {found_kind}; "
                        f"a {' or '.join(ref.kinds)} is required here.",
                    )
                )
        if problems:
            raise Unprocessable("The entity refers to entities that do not exist.", problems)
        return refs

    async def _check_unique_name(self, kind: str, entity_id: str, body: Mapping[str, Any]) -> None:
        if kind != "tag":
            return
        query = sa.select(entities.c.entity_id).where(
            alive_entities(),
            entities.c.kind == "tag",
            entities.c.name == body.get("name"),
            entities.c.entity_id != entity_id,
        )
        clash = await self.conn.scalar(self.scope.apply(query))
        if clash is not None:
            raise Unprocessable(
                "Collection qualifier names are unique within a sandbox.",
                [
                    InvalidField(
                        "/name", f"The name '{body.get('name')}' is already used by '{clash}'."
                    )
                ],
            )

    async def _save_references(
        self, kind: str, entity_id: str, refs: Sequence[catalog.Reference]
    ) -> None:
        await self.conn.execute(
            self.scope.apply(references.delete().where(references.c.from_id == entity_id))
        )
        if refs:
            await self.conn.execute(
                self.scope.apply(references.insert()),
                [
                    {
                        "from_id": entity_id,
                        "from_kind": kind,
                        "pointer": ref.pointer,
                        "to_id": ref.id,
                    }
                    for ref in refs
                ],
            )

    async def _current_row(
        self, kinds: Sequence[str], entity_id: str, if_match: str | None
    ) -> Entity:
        current = await self.get(kinds, entity_id)
        if not _etag_matches(if_match, current.etag):
            raise PreconditionFailed(
                f"If-Match {if_match} does not match the current etag {current.etag}."
            )
        return current

    async def create(
        self, kind: str, raw: object, actor: Actor, entity_id: str | None = None
    ) -> Entity:
        if entity_id is not None and not _storable_id(entity_id):
            raise StoreError(f"An id must be 1 to {MAX_ID_LENGTH} characters long, without U+0000.")
        body = catalog.validate(kind, raw)
        if entity_id is None:
            entity_id = catalog.new_id(kind)
        version = await self._next_version()
        query = sa.select(entities.c.kind).where(
            alive_entities(), entities.c.entity_id == entity_id
        )
        taken = await self.conn.scalar(self.scope.apply(query))
        if taken is not None:
            raise AlreadyExists(
                f"The id '{entity_id}' is already used by a {taken} in this sandbox."
            )
        refs = await self._check_references(kind, entity_id, body)
        await self._check_unique_name(kind, entity_id, body)
        await guardrails.check_new(self.conn, self.scope, kind)
        await guardrails.check_live_decisions(self.conn, self.scope, kind, entity_id, body)
        now = now_iso()
        entity = Entity(
            kind,
            entity_id,
            body,
            1,
            now,
            now,
            actor.user,
            actor.user,
            actor.client_id,
            actor.client_id,
        )
        await self._insert(entity, version)
        await self._record("created", entity, actor)
        await self._save_references(kind, entity_id, refs)
        return entity

    async def draft(
        self, kinds: Sequence[str], entity_id: str, transform: Transform, if_match: str | None
    ) -> Draft:
        """The validated new body of an update, computed in a read transaction, so applying a
        patch and validating (PQL compiled) is not done under the sandbox's write lock."""
        old = await self._current_row(kinds, entity_id, if_match)
        return Draft(old.kind, old.body, catalog.validate(old.kind, transform(dict(old.body))))

    async def update(
        self,
        kinds: Sequence[str],
        entity_id: str,
        transform: Transform,
        actor: Actor,
        if_match: str | None,
        draft: Draft | None = None,
    ) -> Entity:
        """Replace or patch: `transform` maps the current body to the new raw body, which is
        validated like a create. It runs under the sandbox's write lock, so concurrent
        patches apply one after the other and none is lost; a `draft` computed from the body
        still current is used as it is (the transform depends on the old body alone)."""
        version = await self._next_version()
        old = await self._current_row(kinds, entity_id, if_match)
        if draft is not None and draft.kind == old.kind and json_equal(draft.source, old.body):
            body = draft.body
        else:  # changed since the draft: the (bounded) transform runs again, under the lock
            body = catalog.validate(old.kind, transform(dict(old.body)))
        refs = await self._check_references(old.kind, entity_id, body)
        await self._check_unique_name(old.kind, entity_id, body)
        await guardrails.check_live_decisions(self.conn, self.scope, old.kind, entity_id, body)
        await self._close(old.id, version)
        new = Entity(
            old.kind,
            entity_id,
            body,
            old.etag + 1,
            old.created,
            now_iso(),
            old.created_by,
            actor.user,
            old.created_client,
            actor.client_id,
        )
        await self._insert(new, version)
        await self._record("updated", new, actor)
        await self._save_references(old.kind, entity_id, refs)
        return new

    async def delete(
        self,
        kinds: Sequence[str],
        entity_id: str,
        if_match: str | None,
        actor: Actor | None = None,
    ) -> Entity:
        version = await self._next_version()
        old = await self._current_row(kinds, entity_id, if_match)
        query = sa.select(references.c.from_id, references.c.from_kind, references.c.pointer).where(
            references.c.to_id == entity_id, references.c.from_id != entity_id
        )
        rows = await self.conn.execute(self.scope.apply(query))
        referrers = [Referrer(row.from_id, row.from_kind, row.pointer) for row in rows]
        if referrers:
            names = ", ".join(sorted({r.id for r in referrers}))
            raise StillReferenced(f"'{entity_id}' is still referenced by {names}.", referrers)
        await self._close(old.id, version)
        await self._record("deleted", old, actor)
        await self._save_references(old.kind, entity_id, [])
        return old

    async def _close(self, entity_id: str, version: int) -> None:
        close = (
            entities.update()
            .where(alive_entities(), entities.c.entity_id == entity_id)
            .values(valid_to=version, closed_at=now_iso())
        )
        await self.conn.execute(self.scope.apply(close))

    async def _record(self, action: str, entity: Entity, actor: Actor | None) -> None:
        """The entity's history: this version (or its deletion), who and when."""
        row = entity_history.insert().values(
            kind=entity.kind,
            entity_id=entity.id,
            action=action,
            etag=entity.etag,
            body=None if action == "deleted" else entity.body,
            at=entity.modified if action != "deleted" else now_iso(),
            by_user=actor.user if actor else "",
            by_client=actor.client_id if actor else "",
        )
        await self.conn.execute(self.scope.apply(row))

    async def history(self, kinds: Sequence[str], entity_id: str) -> Sequence[Version]:
        """The entity's versions, newest first (at most MAX_HISTORY), deleted ones included."""
        if not _storable_id(entity_id):
            return []
        query = (
            sa.select(entity_history)
            .where(entity_history.c.entity_id == entity_id, entity_history.c.kind.in_(kinds))
            .order_by(entity_history.c.row_id.desc())
            .limit(MAX_HISTORY)
        )
        rows = (await self.conn.execute(self.scope.apply(query))).all()
        return [
            Version(
                number=int(row.row_id),
                kind=row.kind,
                id=row.entity_id,
                action=row.action,
                etag=int(row.etag),
                body=None if row.body is None else dict(row.body),
                at=row.at,
                by_user=row.by_user,
                by_client=row.by_client,
            )
            for row in rows
        ]

    async def _insert(self, entity: Entity, version: int) -> None:
        row = entities.insert().values(
            kind=entity.kind,
            entity_id=entity.id,
            name=str(entity.body.get("name", ""))[:NAME_CHARS],
            body=entity.body,
            etag=entity.etag,
            created=entity.created,
            modified=entity.modified,
            created_by=entity.created_by,
            modified_by=entity.modified_by,
            created_client=entity.created_client,
            modified_client=entity.modified_client,
            valid_from=version,
            valid_to=None,
        )
        await self.conn.execute(self.scope.apply(row))
