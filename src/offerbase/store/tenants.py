"""Organizations, sandboxes and API credentials: the tenant directory.

It finds the tenant of a request (the credential's organization, then the sandbox by name or
container id), so its statements cannot be scoped to a tenant: they say `across_tenants`
(store/scope.py). Everything past this point works inside one sandbox, through its Scope.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase.store.clock import now_iso
from offerbase.store.scope import across_tenants
from offerbase.store.tables import credentials, organizations, sandboxes

DEFAULT_SANDBOX = "prod"

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
    client_id: str
    client_secret: str
    org: str
    sandbox: str


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


async def create_credential(
    conn: AsyncConnection, org_id: str, sandbox: str = DEFAULT_SANDBOX, name: str = ""
) -> NewCredential:
    """Create the org and sandbox when missing, then a credential; the secret is shown once."""
    await ensure_sandbox(conn, org_id, sandbox)
    client_id = secrets.token_hex(16)
    client_secret = "p8e-" + secrets.token_urlsafe(32)
    await conn.execute(
        credentials.insert().values(
            client_id=client_id,
            secret_hash=hash_secret(client_secret),
            org_id=org_id,
            name=name,
            created=now_iso(),
        )
    )
    return NewCredential(client_id, client_secret, org_id, sandbox)


async def authenticate(conn: AsyncConnection, client_id: str, client_secret: str) -> str | None:
    """Return the credential's org when the secret matches, else None."""
    row = (
        await conn.execute(
            sa.select(credentials.c.secret_hash, credentials.c.org_id).where(
                credentials.c.client_id == client_id
            )
        )
    ).first()
    if row is None or not verify_secret(client_secret, row.secret_hash):
        return None
    return str(row.org_id)


async def count_credentials(conn: AsyncConnection) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(credentials)) or 0)
