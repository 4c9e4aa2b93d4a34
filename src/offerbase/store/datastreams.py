"""Datastreams: what an Edge request names with `configId` (Web and Mobile SDK) or `dataStreamId`
(Server API). One belongs to one sandbox and holds the web origins allowed to call with it
(CORS) and a default itemCount per placement.

The id is public (it sits in web pages) and unique across the deployment: an unauthenticated
Edge request finds its sandbox by it (`resolve_datastream`, a directory lookup like
tenants.get_sandbox_by_container, so it says `across_tenants`). Everything else is scoped to one
sandbox through store/scope.py.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase.catalog.specs import MAX_ITEM_COUNT
from offerbase.store.clock import now_iso
from offerbase.store.errors import (
    AlreadyExists,
    InvalidField,
    Unprocessable,
    check_name,
)
from offerbase.store.scope import Scope, across_tenants
from offerbase.store.tables import datastreams, sandboxes
from offerbase.store.tenants import Sandbox

MAX_ID_CHARS = 64  # datastreams.id is String(64)
MAX_ORIGINS = 100
MAX_ORIGIN_CHARS = 300
MAX_ITEM_COUNTS = 1000
MAX_PLACEMENT_ID_CHARS = 255  # an entity id (store/library.py MAX_ID_LENGTH)
MAX_PER_SANDBOX = 1000  # so that a sandbox's list is one bounded answer, without paging

# A datastream id as a client may choose it; not only dots ("." and ".." are path segments).
ID_PATTERN = r"^(?!\.+$)[A-Za-z0-9._:-]{1,64}$"
_ID = re.compile(ID_PATTERN)

# An origin as a browser sends it, `scheme://host[:port]`, with an optional trailing slash.
# The served OpenAPI document publishes this pattern as it is, so it is the whole check.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]{{2,45}}\]"
_PORT = r"6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}"
ORIGIN_PATTERN = rf"^([Hh][Tt][Tt][Pp][Ss]?)://({_HOST})(?::({_PORT}))?/?$"
_ORIGIN = re.compile(ORIGIN_PATTERN)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def valid_id(datastream_id: str) -> bool:
    return _ID.fullmatch(datastream_id) is not None  # fullmatch: `$` also matches before a \n


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]` lower-case, the scheme's default port dropped; ValueError (with
    a message naming the value) for anything else: a path, a query, another scheme, `*`."""
    # `match`, as JSON Schema's pattern (a search, `$` matching before a final newline): the
    # check is the published pattern; the groups leave such a newline out of the result.
    match = _ORIGIN.match(origin) if len(origin) <= MAX_ORIGIN_CHARS else None
    if match is None:
        shown = origin if len(origin) <= 80 else origin[:80] + "..."
        raise ValueError(
            f"{shown!r} is not an origin: write scheme://host[:port] with scheme http or https, "
            "no path, query or wildcard (e.g. https://www.shop.example)."
        )
    scheme, host, port = match.group(1).lower(), match.group(2).lower(), match.group(3)
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def normalise_origins(origins: Iterable[object], pointer: str = "/origins") -> tuple[str, ...]:
    """Every origin normalised, duplicates dropped (first one kept); Unprocessable naming each
    bad one by its JSON pointer."""
    values = list(origins)
    if len(values) > MAX_ORIGINS:
        message = f"At most {MAX_ORIGINS} origins; {len(values)} given."
        raise Unprocessable(message, [InvalidField(pointer, message)])
    errors: list[InvalidField] = []
    found: dict[str, None] = {}
    for index, value in enumerate(values):
        if not isinstance(value, str):
            errors.append(InvalidField(f"{pointer}/{index}", "An origin is a string."))
            continue
        try:
            found.setdefault(normalise_origin(value))
        except ValueError as exc:
            errors.append(InvalidField(f"{pointer}/{index}", str(exc)))
    if errors:
        raise Unprocessable("; ".join(e.message for e in errors), errors)
    return tuple(found)


def check_item_counts(
    item_counts: Mapping[Any, object], pointer: str = "/itemCounts"
) -> dict[str, int]:
    """Placement id -> itemCount (1..MAX_ITEM_COUNT); Unprocessable naming each bad entry."""
    if len(item_counts) > MAX_ITEM_COUNTS:
        message = f"At most {MAX_ITEM_COUNTS} placements; {len(item_counts)} given."
        raise Unprocessable(message, [InvalidField(pointer, message)])
    errors: list[InvalidField] = []
    checked: dict[str, int] = {}
    for key, value in item_counts.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_PLACEMENT_ID_CHARS or "\x00" in key:
            message = f"A placement id is 1 to {MAX_PLACEMENT_ID_CHARS} characters: {key!r}."
            errors.append(InvalidField(pointer, message))
            continue
        here = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 3.0 is an integer to JSON Schema, as to the catalog
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(InvalidField(here, f"The itemCount of {key!r} is an integer."))
        elif not 1 <= value <= MAX_ITEM_COUNT:
            message = f"The itemCount of {key!r} is {value}; it must be 1 to {MAX_ITEM_COUNT}."
            errors.append(InvalidField(here, message))
        else:
            checked[key] = value
    if errors:
        raise Unprocessable("; ".join(e.message for e in errors), errors)
    return checked


@dataclass(frozen=True)
class Datastream:
    id: str
    sandbox: Sandbox
    name: str
    origins: tuple[str, ...]  # normalised "scheme://host[:port]", lower-case, no path
    item_counts: Mapping[str, int] = field(hash=False)  # placement id -> default itemCount
    created: str

    def allows_origin(self, origin: str) -> bool:
        """Is a request's Origin header one of this datastream's origins (after normalising)?"""
        if origin in self.origins:  # what browsers send is normalised already
            return True
        try:
            return normalise_origin(origin) in self.origins
        except ValueError:
            return False  # `null` (an opaque origin), or not an origin at all

    def shown(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "org": self.sandbox.org_id,
            "sandbox": self.sandbox.name,
            "name": self.name,
            "origins": list(self.origins),
            "itemCounts": dict(self.item_counts),
            "created": self.created,
        }


def _datastream(row: Any, sandbox: Sandbox) -> Datastream:
    return Datastream(
        row.id,
        sandbox,
        row.name,
        tuple(row.origins),
        {str(key): int(value) for key, value in dict(row.item_counts).items()},
        row.created,
    )


_COLUMNS = [
    datastreams.c.id,
    datastreams.c.name,
    datastreams.c.origins,
    datastreams.c.item_counts,
    datastreams.c.created,
]


async def create_datastream(
    conn: AsyncConnection,
    sandbox: Sandbox,
    *,
    name: str = "",
    origins: Iterable[object] = (),
    item_counts: Mapping[Any, object] | None = None,
    datastream_id: str | None = None,
) -> Datastream:
    """A new datastream in `sandbox`, with a generated id (a UUID, as Adobe's look) unless one
    is given. AlreadyExists when the id is taken (in any sandbox: ids are global), Unprocessable
    for a malformed id, name, origin or itemCount."""
    checked_name = check_name(name)
    checked_origins = normalise_origins(origins)
    checked_counts = check_item_counts(item_counts or {})
    if datastream_id is None:
        datastream_id = str(uuid.uuid4())
    elif not valid_id(datastream_id):
        message = (
            f"{datastream_id[:80]!r} is not a datastream id: 1 to {MAX_ID_CHARS} of "
            "A-Z a-z 0-9 . _ : - (not only dots)."
        )
        raise Unprocessable(message, [InvalidField("/id", message)])
    scope = Scope.of(sandbox)
    count = sa.select(sa.func.count()).select_from(datastreams)
    if int(await conn.scalar(scope.apply(count)) or 0) >= MAX_PER_SANDBOX:
        message = f"The sandbox has {MAX_PER_SANDBOX} datastreams, the most it may have."
        raise Unprocessable(message, [InvalidField("", message)])
    if await resolve_datastream(conn, datastream_id) is not None:
        raise AlreadyExists(f"A datastream with id '{datastream_id}' exists already.")
    created = now_iso()
    insert = datastreams.insert().values(
        id=datastream_id,
        name=checked_name,
        origins=list(checked_origins),
        item_counts=checked_counts,
        created=created,
    )
    try:
        await conn.execute(scope.apply(insert))
    except sa.exc.IntegrityError as exc:  # created meanwhile by another writer
        raise AlreadyExists(f"A datastream with id '{datastream_id}' exists already.") from exc
    return Datastream(
        datastream_id, sandbox, checked_name, checked_origins, checked_counts, created
    )


async def list_datastreams(conn: AsyncConnection, sandbox: Sandbox) -> list[Datastream]:
    """The sandbox's datastreams, oldest first (at most MAX_PER_SANDBOX)."""
    query = sa.select(*_COLUMNS).order_by(datastreams.c.created, datastreams.c.id)
    rows = (await conn.execute(Scope.of(sandbox).apply(query))).all()
    return [_datastream(row, sandbox) for row in rows]


async def get_datastream(
    conn: AsyncConnection, sandbox: Sandbox, datastream_id: str
) -> Datastream | None:
    """The sandbox's datastream with this id; None when it has none (another's is None too)."""
    if not valid_id(datastream_id):
        return None
    query = sa.select(*_COLUMNS).where(datastreams.c.id == datastream_id)
    row = (await conn.execute(Scope.of(sandbox).apply(query))).first()
    return None if row is None else _datastream(row, sandbox)


async def delete_datastream(conn: AsyncConnection, sandbox: Sandbox, datastream_id: str) -> bool:
    """Delete the sandbox's datastream; False when the sandbox has no such one."""
    if not valid_id(datastream_id):
        return False
    delete = datastreams.delete().where(datastreams.c.id == datastream_id)
    result = await conn.execute(Scope.of(sandbox).apply(delete))
    return bool(result.rowcount)


async def resolve_datastream(conn: AsyncConnection, datastream_id: str) -> Datastream | None:
    """The datastream with this id and its sandbox, in whichever tenant it is: how an
    unauthenticated Edge request finds its tenant. None for an unknown or malformed id."""
    if not valid_id(datastream_id):
        return None
    query = (
        sa.select(
            *_COLUMNS,
            sandboxes.c.pk,
            sandboxes.c.org_id,
            sandboxes.c.name.label("sandbox_name"),
            sandboxes.c.sandbox_id,
            sandboxes.c.container_id,
        )
        .select_from(datastreams.join(sandboxes, sandboxes.c.pk == datastreams.c.sandbox_pk))
        .where(datastreams.c.id == datastream_id)
    )
    row = (await conn.execute(across_tenants(query))).first()
    if row is None:
        return None
    sandbox = Sandbox(row.pk, row.org_id, row.sandbox_name, row.sandbox_id, row.container_id)
    return _datastream(row, sandbox)
