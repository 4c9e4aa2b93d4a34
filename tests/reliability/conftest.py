"""Fixtures of the reliability suite: each test starts its own `offerbase serve` (see
harness.py) on a database of its own, on SQLite and on PostgreSQL.

Every test in this folder is put in one xdist group (`reliability`, by the hook below; with
`--dist loadgroup` in scripts/test), so these tests run one after another on one pytest
worker: their servers never compete with each other for the two cores, only with the rest of
the suite on the other worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from reliability.harness import Server, fresh_database


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the items
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("reliability"))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """The backend, and PostgreSQL's admin URL (the PostgreSQL case skips, or fails with
    CI=true, when the server does not answer: tests/conftest.py's `pg_admin_url`)."""
    if request.param == "sqlite":
        return "sqlite", None
    return "postgresql", str(request.getfixturevalue("pg_admin_url"))


@pytest.fixture
async def database_url(backend: tuple[str, str | None]) -> AsyncIterator[str | None]:
    """A new database for this test (None on SQLite: the server's data dir holds it)."""
    async with fresh_database(*backend) as url:
        yield url


@pytest.fixture
async def make_server(
    database_url: str | None, tmp_path: Path
) -> AsyncIterator[Callable[..., Server]]:
    """`make_server(workers=2, env={...})`: a Server on this test's database, not started;
    every server made is stopped after the test."""
    made: list[Server] = []

    def make(**options: Any) -> Server:
        options.setdefault("database_url", database_url)
        server = Server(tmp_path / f"data-{len(made)}", **options)
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()
