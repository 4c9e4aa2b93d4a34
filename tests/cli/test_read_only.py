"""Read-only CLI commands never create nor migrate a database; commands that write migrate it.

Through the real CLI (typer's runner), on a fresh data directory, an empty SQLite file, an empty
PostgreSQL database and a database one migration behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from click.testing import Result
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from offerbase.cli import app
from offerbase.store.migrate import MIGRATIONS_DIR

runner = CliRunner()
ORG = "READONLY@AdobeOrg"
READ_ONLY = {
    "sandboxes list": ["sandboxes", "list"],
    "events export": ["events", "export", "--org", ORG],
    "catalog export": ["catalog", "export", "--org", ORG],
    "datastreams list": ["datastreams", "list"],
    "users list": ["users", "list"],
    # not read-only, but it only deletes old events: it never creates nor migrates a database
    "events prune": ["events", "prune"],
    "report": ["report", "--org", ORG],
}
SCRIPTS = ScriptDirectory(str(MIGRATIONS_DIR))
HEAD = SCRIPTS.get_current_head()


@pytest.fixture(autouse=True)
def environment() -> Iterator[None]:
    """The CLI exports --data-dir / --database-url to the environment (for `serve`'s workers):
    start without them and put the environment back afterwards."""
    saved = dict(os.environ)
    os.environ.pop("OFFERBASE_DATA_DIR", None)
    os.environ.pop("OFFERBASE_DATABASE_URL", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def sqlite_revisions(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]


def sqlite_tables(path: Path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]


@pytest.mark.parametrize("args", READ_ONLY.values(), ids=READ_ONLY.keys())
def test_a_read_only_command_does_not_create_a_missing_database(
    args: list[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    result = invoke(*args, "--data-dir", str(data_dir))
    assert result.exit_code == 2, result.output
    assert f"No database at {data_dir.resolve() / 'offerbase.db'}" in result.stderr
    assert "`offerbase serve` or `offerbase credentials create` creates and migrates it" in (
        result.stderr
    )
    assert result.stdout == ""
    assert not data_dir.exists()  # not even the directory


@pytest.mark.parametrize("args", READ_ONLY.values(), ids=READ_ONLY.keys())
def test_a_read_only_command_leaves_an_empty_sqlite_database_untouched(
    args: list[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    sqlite3.connect(data_dir / "offerbase.db").close()  # an empty database file
    result = invoke(*args, "--data-dir", str(data_dir))
    assert result.exit_code == 2, result.output
    assert "has no Offerbase tables" in result.stderr
    assert [p.name for p in data_dir.iterdir()] == ["offerbase.db"]
    assert (data_dir / "offerbase.db").stat().st_size == 0
    assert sqlite_tables(data_dir / "offerbase.db") == []


def migrate_sqlite_to(path: Path, revision: str) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def test_a_database_one_migration_behind_is_migrated_by_writes_only(tmp_path: Path) -> None:
    previous = SCRIPTS.get_revision(HEAD).down_revision
    assert isinstance(previous, str)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / "offerbase.db"
    migrate_sqlite_to(path, previous)
    tables = sqlite_tables(path)

    for args in READ_ONLY.values():
        result = invoke(*args, "--data-dir", str(data_dir))
        assert result.exit_code == 2, result.output
        assert f"is at migration {previous}; this version of Offerbase needs {HEAD}" in (
            result.stderr
        )
    assert sqlite_revisions(path) == [previous]
    assert sqlite_tables(path) == tables

    created = invoke("credentials", "create", "--org", ORG, "--json", "--data-dir", str(data_dir))
    assert created.exit_code == 0, created.output
    assert sqlite_revisions(path) == [HEAD]
    listed = invoke("sandboxes", "list", "--data-dir", str(data_dir))
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["org"] for line in listed.stdout.splitlines()] == [ORG]
    for args in READ_ONLY.values():  # the sandbox exists now: every read-only command works
        assert invoke(*args, "--data-dir", str(data_dir)).exit_code == 0


# Each with its exit code on a fresh data directory: importing needs a sandbox (exit 2 when
# there is none), but the database is created and migrated first all the same.
WRITES = {
    "credentials create": (["credentials", "create", "--org", ORG], 0),
    "profiles import": (["profiles", "import", "{files}/p.ndjson", "--org", ORG], 2),
    "catalog import": (["catalog", "import", "{files}/c.json", "--org", ORG], 2),
    "datastreams create": (["datastreams", "create", "--org", ORG], 0),
    "datastreams delete": (["datastreams", "delete", "some-id", "--org", ORG], 2),
}


@pytest.mark.parametrize(("args", "exit_code"), WRITES.values(), ids=WRITES.keys())
def test_commands_that_write_create_and_migrate_the_database(
    args: list[str], exit_code: int, tmp_path: Path
) -> None:
    (tmp_path / "p.ndjson").write_text("")
    (tmp_path / "c.json").write_text(json.dumps({"format": "offerbase-catalog/1", "entities": []}))
    data_dir = tmp_path / "data"
    command_line = [arg.format(files=tmp_path) for arg in args]
    result = invoke(*command_line, "--data-dir", str(data_dir))
    assert result.exit_code == exit_code, result.output
    if exit_code == 2:
        assert f"Organization '{ORG}' has no sandbox named 'prod'." in result.stderr
    assert sqlite_revisions(data_dir / "offerbase.db") == [HEAD]


@pytest.fixture
async def empty_pg_database(pg_admin_url: str) -> AsyncIterator[str]:
    name = f"offerbase_empty_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_async_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def pg_tables(url: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


async def test_read_only_commands_leave_an_empty_postgresql_database_untouched(
    empty_pg_database: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"

    async def cli(*args: str, url: str = empty_pg_database) -> Result:
        # In a thread: the CLI runs its own event loop.
        return await asyncio.to_thread(
            invoke, *args, "--database-url", url, "--data-dir", str(data_dir)
        )

    for args in READ_ONLY.values():
        result = await cli(*args)
        assert result.exit_code == 2, result.output
        assert "has no Offerbase tables" in result.stderr
    assert await pg_tables(empty_pg_database) == []
    result = await cli("sandboxes", "list", url=empty_pg_database + "_missing")
    assert result.exit_code == 2, result.output
    assert "Cannot read the database at" in result.stderr
    assert "does not exist" in result.stderr
    assert not data_dir.exists()

    created = await cli("credentials", "create", "--org", ORG)
    assert created.exit_code == 0, created.output
    assert "alembic_version" in await pg_tables(empty_pg_database)
    listed = await cli("sandboxes", "list")
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["org"] for line in listed.stdout.splitlines()] == [ORG]
