"""The store's tests run with tenancy checked on every statement (offerbase.store.scope.check)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from offerbase.store import scope
from offerbase.store.db import Database


def _check(_conn: Any, statement: Any, *_args: Any) -> None:
    scope.check(statement)


@pytest.fixture(autouse=True)
def tenancy_guard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """While a test that uses the `database` fixture runs, every SQLAlchemy statement and every
    raw point read must be scoped by store/scope.py: an unscoped one raises UnscopedTable."""
    if "database" not in request.fixturenames:
        yield
        return
    db: Database = request.getfixturevalue("database")
    point_read = db.point_read

    async def checked_point_read(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        scope.check_raw(sql, params)
        return await point_read(sql, params)

    monkeypatch.setattr(db, "point_read", checked_point_read)
    event.listen(db.engine.sync_engine, "before_execute", _check)
    try:
        yield
    finally:
        event.remove(db.engine.sync_engine, "before_execute", _check)
