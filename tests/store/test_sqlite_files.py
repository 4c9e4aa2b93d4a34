"""The SQLite database as a file: owner-only permissions, and the durability setting applied on
every connection Offerbase opens (SQLAlchemy's pool and the raw event writer)."""

from __future__ import annotations

import stat
from pathlib import Path

import pydantic
import pytest
import sqlalchemy as sa

from offerbase.config import Settings
from offerbase.store.db import Database
from offerbase.store.migrate import upgrade
from offerbase.store.tables import decision_events

# PRAGMA synchronous reads back as a number.
SYNCHRONOUS = {"normal": 1, "full": 2}


@pytest.mark.parametrize("mode", ["full", "normal"])
async def test_every_connection_uses_the_configured_synchronous_mode(
    tmp_path: Path, mode: str
) -> None:
    settings = Settings(data_dir=tmp_path, sqlite_synchronous=mode)  # type: ignore[arg-type]
    db = Database.for_settings(settings)
    try:
        await upgrade(db)
        async with db.read() as conn:
            pooled = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one()
        # The event writer opens its own connection on first use.
        assert await db.insert_rows(decision_events, ("sandbox_pk",), []) in (True, False)
        assert db._writer is not None
        raw = db._writer.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        await db.dispose()
    assert (pooled, raw) == (SYNCHRONOUS[mode], SYNCHRONOUS[mode])


def test_the_default_is_full_and_other_modes_are_refused(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).sqlite_synchronous == "full"
    with pytest.raises(pydantic.ValidationError, match="sqlite_synchronous"):
        Settings(data_dir=tmp_path, sqlite_synchronous="off")  # type: ignore[arg-type]


async def test_a_new_database_file_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = Database(f"sqlite:///{path}")
    try:
        async with db.write() as conn:
            await conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    finally:
        await db.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_data_dir_is_private_to_its_owner(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "a" / "data")
    settings.ensure_data_dir()
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
