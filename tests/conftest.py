"""Shared fixtures: the app on SQLite and on PostgreSQL, and a fresh tenant per test.

Every test gets its own organization, so tests never see each other's data and need no cleanup;
that also exercises tenancy on every request.

PostgreSQL is probed only when a test needs the PostgreSQL `database`, so a run that needs no
database (tests/pql, tests/catalog, tests/engine: `scripts/test --fast`) never touches it.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    # Imported where used: the fast, database-free tests should not pay for the app's imports.
    import httpx
    from fastapi import FastAPI

    from offerbase.store.db import Database

PG_ADMIN_URL = os.environ.get(
    "OFFERBASE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
SIGNING_KEY = "test-signing-key-" + "x" * 32

_pg_answered: bool | None = None  # the probe's result, once a test needed PostgreSQL


async def _pg_available() -> bool:
    """Does PostgreSQL answer at PG_ADMIN_URL? Probed once per test process, on first need."""
    global _pg_answered
    if _pg_answered is None:
        import sqlalchemy as sa
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(PG_ADMIN_URL)
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            _pg_answered = True
        except Exception:  # any failure means "no server here"
            _pg_answered = False
        finally:
            await engine.dispose()
    return _pg_answered


def pytest_report_header(config: pytest.Config) -> str:
    if IN_CI:
        return f"PostgreSQL: {PG_ADMIN_URL} (CI=true: PostgreSQL tests fail if it does not answer)"
    return (
        f"PostgreSQL: {PG_ADMIN_URL} (probed when a test first needs it; if it does not answer, "
        "PostgreSQL tests are SKIPPED: set CI=true to require them)"
    )


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from offerbase.store.db import Database
    from offerbase.store.migrate import upgrade

    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "offerbase.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db)
        yield db
        await db.dispose()
        return
    if not await _pg_available():
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL does not answer at {PG_ADMIN_URL}")
        pytest.skip(f"PostgreSQL does not answer at {PG_ADMIN_URL}")
    name = f"offerbase_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    await upgrade(db)
    yield db
    await db.dispose()
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(scope="session")
async def app(database: Database, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    from offerbase.api.app import create_app
    from offerbase.config import Settings

    data_dir: Path = tmp_path_factory.mktemp("data")
    settings = Settings(data_dir=data_dir, secret_key=SIGNING_KEY, database_url=database.url)
    return create_app(settings, db=database)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://offerbase.test") as http:
        yield http


@dataclass
class Tenant:
    org: str
    sandbox: str
    client_id: str
    client_secret: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "x-api-key": self.client_id,
            "x-gw-ims-org-id": self.org,
            "x-sandbox-name": self.sandbox,
        }

    def in_sandbox(self, sandbox: str) -> Tenant:
        return Tenant(self.org, sandbox, self.client_id, self.client_secret, self.token)


async def make_tenant(
    app: FastAPI, client: httpx.AsyncClient, sandboxes: tuple[str, ...] = ("prod",)
) -> Tenant:
    from offerbase.store import tenants

    org = f"{uuid.uuid4().hex[:24].upper()}@AdobeOrg"
    async with app.state.db.write() as conn:
        credential = await tenants.create_credential(conn, org, sandboxes[0])
        for name in sandboxes[1:]:
            await tenants.ensure_sandbox(conn, org, name)
    response = await client.post(
        "/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": credential.client_id,
            "client_secret": credential.client_secret,
        },
    )
    assert response.status_code == 200, response.text
    return Tenant(
        org,
        sandboxes[0],
        credential.client_id,
        credential.client_secret,
        response.json()["access_token"],
    )


@pytest.fixture
async def tenant(app: FastAPI, client: httpx.AsyncClient) -> Tenant:
    return await make_tenant(app, client, ("prod", "dev"))


@pytest.fixture
def other_tenant(app: FastAPI, client: httpx.AsyncClient) -> Callable[[], Any]:
    """Another organization (for isolation tests): `await other_tenant()`."""
    return lambda: make_tenant(app, client, ("prod", "dev"))
