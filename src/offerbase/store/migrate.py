"""Apply Alembic migrations programmatically (serve and the CLI's write commands call this at
start), and tell without writing whether a database is migrated (the CLI's read-only commands)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from offerbase.store.db import Database, normalize_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(_config(sync_conn), "head"))


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_revisions(path: Path) -> set[str]:
    """The revisions recorded in a SQLite file, opened read-only: nothing is created there."""
    connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    try:
        if not connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchall():
            return set()
        return {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}
    finally:
        connection.close()


async def _server_revisions(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            heads = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
        return set(heads)
    finally:
        await engine.dispose()


async def not_ready(url: str, hint: str) -> str | None:
    """Why a read-only command cannot use this database (None: it is at the latest
    migration), ending with `hint` (how to migrate it). Only reads: a missing database is not
    created, an old one not migrated."""
    url = normalize_url(url)
    try:
        if url.startswith("sqlite"):
            path = Path(url.split("///", 1)[1])
            if not path.is_file():
                return f"No database at {path}: {hint}."
            current = _sqlite_revisions(path)
        else:
            current = await _server_revisions(url)
    except (sqlite3.Error, sa.exc.SQLAlchemyError, OSError) as exc:
        reason = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc  # the driver's words
        return f"Cannot read the database at {_shown(url)}: {reason}"
    expected = set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
    if not current:
        return f"The database at {_shown(url)} has no Offerbase tables: {hint}."
    if current != expected:
        return (
            f"The database at {_shown(url)} is at migration {', '.join(sorted(current))}; this "
            f"version of Offerbase needs {', '.join(sorted(expected))}: {hint}."
        )
    return None
