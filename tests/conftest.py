"""Shared fixtures: the app on SQLite and on PostgreSQL, and a fresh tenant per test.

Every test gets its own organization, so tests never see each other's data and need no cleanup;
that also exercises tenancy on every request.

Tests share one app per backend (`app`), which they must not change. A test that needs the app
configured differently (settings such as `snapshot_poll_seconds` or `redis_url`, a fixed clock
or RNG) gets an app of its own on the same database: its module overrides `app_options`, or the
test parametrizes it (`indirect=True`), and `app`, `client` and `tenant` then use that app.
`make_app(**options)` builds more of them. Tests reach the app's services (database, settings,
event writer, ...) only through `services` (one helper: `_services`).

PostgreSQL is probed only when a test needs the PostgreSQL `database`, so a run that needs no
database (tests/pql, tests/catalog, tests/engine: `scripts/test --fast`) never touches it.
"""

from __future__ import annotations

import os
import random
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
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


async def _require_pg() -> None:
    """Skip the test when PostgreSQL does not answer; with CI=true, fail it."""
    if not await _pg_available():
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL does not answer at {PG_ADMIN_URL}")
        pytest.skip(f"PostgreSQL does not answer at {PG_ADMIN_URL}")


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
    await _require_pg()
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
async def pg_admin_url() -> str:
    """A URL to the PostgreSQL server's admin database, for tests that create databases of
    their own (skipped like the PostgreSQL `database` when the server does not answer)."""
    await _require_pg()
    return PG_ADMIN_URL


def _services(app: FastAPI) -> Any:
    """The app's services (db, settings, counters, events, snapshots, clock, rng)."""
    from offerbase.api.deps import services_of

    return services_of(app)


def _build_app(
    database: Database,
    data_dir: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
    **settings: Any,
) -> FastAPI:
    """An app on `database`, configured as `offerbase serve` would be by these settings; a
    clock and an RNG replace the real ones (reproducible decisions)."""
    from offerbase.api.app import create_app
    from offerbase.config import Settings

    # Every test calls from one client address: a limit per address made for the real world
    # would soon refuse the token requests of tests that follow a few failed ones. Tests of
    # the throttle set their own limits and addresses (tests/api/test_token_endpoint.py).
    settings.setdefault("token_failures_per_address", 1_000_000)
    # And wrong secrets are answered at once, not after the tarpit's pause.
    settings.setdefault("token_failure_delay_seconds", 0)
    config = Settings(
        data_dir=data_dir, secret_key=SIGNING_KEY, database_url=database.url, **settings
    )
    return create_app(config, db=database, clock=clock, rng=rng)


@pytest.fixture(scope="session")
async def shared_app(database: Database, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The app most tests use, one per backend for the whole session: never change it."""
    return _build_app(database, tmp_path_factory.mktemp("data"))


@pytest.fixture
async def make_app(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Callable[..., FastAPI]]:
    """`make_app(**options)`: a new app on the test's database, for this test only. Options
    are Settings fields (`snapshot_poll_seconds=0`, `redis_url=...`) plus `clock` and `rng`."""
    built: list[FastAPI] = []

    def make(**options: Any) -> FastAPI:
        app = _build_app(database, tmp_path_factory.mktemp("data"), **options)
        built.append(app)
        return app

    yield make
    for app in built:  # the database is the session's; only what each app opened is closed
        await _services(app).counters.close()


@pytest.fixture
def app_options(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """How this test's app differs from the shared one (see the module docstring); None: it
    does not. A parametrized value is shared by the test's runs on both backends: keep state
    (an RNG) in a module's override, which builds it for every test."""
    options: dict[str, Any] | None = getattr(request, "param", None)
    return options


@pytest.fixture
def app(
    app_options: dict[str, Any] | None,
    shared_app: FastAPI,
    make_app: Callable[..., FastAPI],
) -> FastAPI:
    """The test's app: the shared one, or one of its own when `app_options` says how."""
    return shared_app if app_options is None else make_app(**app_options)


@pytest.fixture
def services(app: FastAPI) -> Any:
    """The test's app's services (`services.db`, `services.settings`, `services.events`...)."""
    return _services(app)


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
    async with _services(app).db.write() as conn:
        credential = await tenants.create_credential(conn, org, sandboxes[0], all_sandboxes=True)
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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what tests measured (`record_property("measured", ...)`, the reliability suite's
    numbers), so a run shows them without failing on them."""
    lines = [
        f"{report.nodeid}: {value}"
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call"
        for name, value in report.user_properties
        if name == "measured"
    ]
    if lines:
        terminalreporter.section("measured")
        for line in lines:
            terminalreporter.write_line(line)
