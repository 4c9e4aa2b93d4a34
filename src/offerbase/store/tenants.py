"""Organizations, sandboxes and API credentials: the tenant directory.

It finds the tenant of a request (the credential's organization, then the sandbox by name or
container id), so its statements cannot be scoped to a tenant: they say `across_tenants`
(store/scope.py). Everything past this point works inside one sandbox, through its Scope.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase.store.clock import now_iso
from offerbase.store.errors import InvalidField, InvalidFields
from offerbase.store.scope import across_tenants
from offerbase.store.tables import credentials, directory_state, organizations, sandboxes

DEFAULT_SANDBOX = "prod"
MAX_CREDENTIAL_NAME_CHARS = 255  # the column's size

# scrypt parameters for client secrets: slow enough to make a stolen table useless to brute
# force, fast enough (~20 ms) for the token endpoint.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class Sandbox:
    pk: int
    org_id: str
    name: str
    sandbox_id: str
    container_id: str


@dataclass(frozen=True)
class NewCredential:
    """A credential's secret, shown once: at creation and at each rotation."""

    client_id: str
    client_secret: str
    org: str
    sandbox: str | None  # the only sandbox it may use; None: every sandbox of the org
    admin: bool


@dataclass(frozen=True)
class Credential:
    """A stored credential as it may be shown: never its secret hash."""

    client_id: str
    org: str
    name: str
    sandbox: str | None  # the only sandbox it may use; None: every sandbox of the org
    admin: bool
    generation: int  # bumped by each rotation; a token of an older generation is refused
    created: str
    revoked: str | None

    def shown(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "org": self.org,
            "name": self.name,
            "sandbox": self.sandbox,
            "admin": self.admin,
            "created": self.created,
            "revoked": self.revoked,
        }

    def may_use(self, sandbox: str) -> bool:
        return self.sandbox is None or self.sandbox == sandbox


class CredentialRevoked(Exception):
    """A revoked credential cannot be rotated (revocation is final)."""


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


@cache
def dummy_hash() -> str:
    """A hash no secret matches in practice, verified for an unknown client id so that it
    costs the same scrypt run as a known one (the answer's timing tells nothing)."""
    return hash_secret(secrets.token_urlsafe(32))


def _sandbox(row: sa.Row[Any]) -> Sandbox:
    return Sandbox(row.pk, row.org_id, row.name, row.sandbox_id, row.container_id)


async def ensure_org(conn: AsyncConnection, org_id: str) -> None:
    exists = await conn.scalar(sa.select(organizations.c.id).where(organizations.c.id == org_id))
    if exists is None:
        await conn.execute(organizations.insert().values(id=org_id, created=now_iso()))


async def ensure_sandbox(conn: AsyncConnection, org_id: str, name: str) -> Sandbox:
    await ensure_org(conn, org_id)
    found = await get_sandbox(conn, org_id, name)
    if found is not None:
        return found
    await conn.execute(
        across_tenants(
            sandboxes.insert().values(
                org_id=org_id,
                name=name,
                sandbox_id=str(uuid.uuid4()),
                container_id=str(uuid.uuid4()),
                created=now_iso(),
            )
        )
    )
    created = await get_sandbox(conn, org_id, name)
    assert created is not None
    return created


async def get_sandbox(conn: AsyncConnection, org_id: str, name: str) -> Sandbox | None:
    query = sa.select(sandboxes).where(sandboxes.c.org_id == org_id, sandboxes.c.name == name)
    row = (await conn.execute(across_tenants(query))).first()
    return None if row is None else _sandbox(row)


async def get_sandbox_by_container(conn: AsyncConnection, container_id: str) -> Sandbox | None:
    query = sa.select(sandboxes).where(sandboxes.c.container_id == container_id)
    row = (await conn.execute(across_tenants(query))).first()
    return None if row is None else _sandbox(row)


async def list_sandboxes(conn: AsyncConnection, org_id: str | None = None) -> list[Sandbox]:
    query = sa.select(sandboxes).order_by(sandboxes.c.org_id, sandboxes.c.name)
    if org_id is not None:
        query = query.where(sandboxes.c.org_id == org_id)
    return [_sandbox(row) for row in (await conn.execute(across_tenants(query))).all()]


_Item = TypeVar("_Item")


async def in_each_sandbox(
    conn: AsyncConnection,
    fetch: Callable[[AsyncConnection, Sandbox], Awaitable[list[_Item]]],
    org_id: str | None = None,
    sandbox_name: str | None = None,
) -> list[_Item]:
    """`fetch` (a sandbox-scoped listing) over every sandbox of the organization (of every
    organization when None), or only its sandbox `sandbox_name`: the CLI's listings that span
    an organization, each still one scoped query per sandbox."""
    found: list[_Item] = []
    for sandbox in await list_sandboxes(conn, org_id):
        if sandbox_name is None or sandbox.name == sandbox_name:
            found += await fetch(conn, sandbox)
    return found


_CREDENTIAL_COLUMNS = [
    credentials.c.client_id,
    credentials.c.org_id,
    credentials.c.name,
    credentials.c.sandbox,
    credentials.c.admin,
    credentials.c.generation,
    credentials.c.created,
    credentials.c.revoked,
]


def _credential(row: Any) -> Credential:  # a row with _CREDENTIAL_COLUMNS (and maybe more)
    return Credential(
        row.client_id,
        row.org_id,
        row.name,
        row.sandbox,
        bool(row.admin),
        int(row.generation),
        row.created,
        row.revoked,
    )


async def _changed(conn: AsyncConnection) -> None:
    """Every worker polls this number to learn of a change (api/credential_cache.py)."""
    state = directory_state
    await conn.execute(
        state.update()
        .where(state.c.id == 1)
        .values(credentials_version=state.c.credentials_version + 1)
    )


async def credentials_version(conn: AsyncConnection) -> int:
    state = directory_state
    return int(await conn.scalar(sa.select(state.c.credentials_version)) or 0)


def _new_secret() -> str:
    return "p8e-" + secrets.token_urlsafe(32)


async def create_credential(
    conn: AsyncConnection,
    org_id: str,
    sandbox: str = DEFAULT_SANDBOX,
    name: str = "",
    *,
    all_sandboxes: bool = False,
    admin: bool = False,
) -> NewCredential:
    """Create the org and sandbox when missing, then a credential limited to that sandbox
    (every sandbox of the org with `all_sandboxes`, and always for an admin, who can rotate
    any credential of the org and so reach every sandbox anyway). The secret is shown once.
    Raises InvalidFields for a name longer than MAX_CREDENTIAL_NAME_CHARS."""
    if len(name) > MAX_CREDENTIAL_NAME_CHARS:
        message = f"A credential's name has at most {MAX_CREDENTIAL_NAME_CHARS} characters."
        raise InvalidFields(message, [InvalidField("/name", message)])
    await ensure_sandbox(conn, org_id, sandbox)
    limited_to = None if all_sandboxes or admin else sandbox
    client_id = secrets.token_hex(16)
    client_secret = _new_secret()
    await conn.execute(
        credentials.insert().values(
            client_id=client_id,
            secret_hash=hash_secret(client_secret),
            org_id=org_id,
            name=name,
            created=now_iso(),
            sandbox=limited_to,
            admin=admin,
        )
    )
    await _changed(conn)
    return NewCredential(client_id, client_secret, org_id, limited_to, admin)


async def find_credential(conn: AsyncConnection, client_id: str) -> tuple[Credential, str] | None:
    """The credential and its secret hash, for the token endpoint; revoked ones included."""
    query = sa.select(*_CREDENTIAL_COLUMNS, credentials.c.secret_hash).where(
        credentials.c.client_id == client_id
    )
    row = (await conn.execute(query)).first()
    return None if row is None else (_credential(row), str(row.secret_hash))


async def get_credential(
    conn: AsyncConnection, client_id: str, org_id: str | None = None
) -> Credential | None:
    """The credential, when it exists (and belongs to `org_id` when given)."""
    query = sa.select(*_CREDENTIAL_COLUMNS).where(credentials.c.client_id == client_id)
    if org_id is not None:
        query = query.where(credentials.c.org_id == org_id)
    row = (await conn.execute(query)).first()
    return None if row is None else _credential(row)


async def list_credentials(conn: AsyncConnection, org_id: str | None = None) -> list[Credential]:
    query = sa.select(*_CREDENTIAL_COLUMNS).order_by(
        credentials.c.org_id, credentials.c.created, credentials.c.client_id
    )
    if org_id is not None:
        query = query.where(credentials.c.org_id == org_id)
    return [_credential(row) for row in (await conn.execute(query)).all()]


async def revoke_credential(
    conn: AsyncConnection, client_id: str, org_id: str | None = None
) -> Credential | None:
    """Revoke the credential: its secret and every token issued for it stop working. Revoking
    again changes nothing (the first time is kept). None when there is no such credential."""
    found = await get_credential(conn, client_id, org_id)
    if found is None or found.revoked is not None:
        return found
    await conn.execute(
        credentials.update().where(credentials.c.client_id == client_id).values(revoked=now_iso())
    )
    await _changed(conn)
    return await get_credential(conn, client_id)


async def rotate_credential(
    conn: AsyncConnection, client_id: str, org_id: str | None = None
) -> NewCredential | None:
    """A new secret; the old one stops working at once and the tokens issued under it within
    a second (the generation moves on). None when there is no such credential; raises
    CredentialRevoked for a revoked one."""
    found = await get_credential(conn, client_id, org_id)
    if found is None:
        return None
    if found.revoked is not None:
        raise CredentialRevoked(client_id)
    client_secret = _new_secret()
    # scrypt takes ~20 ms: in a thread, so the admin route does not stall the event loop.
    secret_hash = await asyncio.to_thread(hash_secret, client_secret)
    await conn.execute(
        credentials.update()
        .where(credentials.c.client_id == client_id)
        .values(
            secret_hash=secret_hash,
            generation=credentials.c.generation + 1,
        )
    )
    await _changed(conn)
    return NewCredential(client_id, client_secret, found.org, found.sandbox, found.admin)


async def count_credentials(conn: AsyncConnection) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(credentials)) or 0)
