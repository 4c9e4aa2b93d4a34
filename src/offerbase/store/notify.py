"""Catalog change notifications between workers, on PostgreSQL (LISTEN/NOTIFY).

Every catalog write bumps its sandbox's catalog version (store/library.py); on PostgreSQL the
same transaction also sends `NOTIFY offerbase_catalog, '<sandbox pk>'` (`catalog_changed`).
PostgreSQL delivers a notification only when its transaction commits, so a listener never hears
of a write that was rolled back, and hears of a committed one at once.

Each worker keeps one dedicated connection that LISTENs (`CatalogListener`) and calls
`on_change(sandbox_pk)` for every notification. The connection is not from a pool: LISTEN is
state of a session. When it drops (the server restarted, the network went away), the listener
reconnects with a growing delay and, once connected again, calls `on_reconnect()`, because
notifications sent meanwhile are lost. None of this is needed for correctness: the snapshot
cache still polls the catalog version (api/snapshots.py), so a worker whose listener is down is
as fresh as the poll interval. SQLite has no notifications: its workers only poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import sqlalchemy as sa

CHANNEL = "offerbase_catalog"
# Reconnection delays: quick for a blip, bounded for a long outage (polling covers it).
_FIRST_RETRY_SECONDS = 0.2
_MAX_RETRY_SECONDS = 5.0


def catalog_changed(sandbox_pk: int) -> sa.Select[tuple[Any]]:
    """The statement that tells every listener the sandbox's catalog changed; run it inside
    the write's transaction (PostgreSQL only)."""
    return sa.select(sa.func.pg_notify(CHANNEL, str(sandbox_pk)))


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy `postgresql+asyncpg://` URL as the DSN asyncpg itself takes."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class CatalogListener:
    """One worker's LISTEN connection; `start()` runs it in the background, `stop()` ends it."""

    def __init__(
        self,
        url: str,
        on_change: Callable[[int], None],
        on_reconnect: Callable[[], None],
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self._on_change = on_change
        self._on_reconnect = on_reconnect
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # set while LISTEN is active (tests wait for it)
        self.connections = 0  # how many times LISTEN was (re-)established

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="offerbase-catalog-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _notified(
        self,
        _conn: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any],
        _pid: int,
        _channel: str,
        payload: object,
    ) -> None:
        with contextlib.suppress(ValueError):  # only our own writes send on this channel
            self._on_change(int(str(payload)))

    async def _run(self) -> None:
        delay = _FIRST_RETRY_SECONDS
        while True:
            try:
                await self._listen_until_lost()
                delay = _FIRST_RETRY_SECONDS
            except Exception:  # any failure (refused, reset, timed out): retry; polling covers it
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_SECONDS)

    async def _listen_until_lost(self) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=5)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._notified)
            self.connections += 1
            # Writes may have committed while no LISTEN was active (at start, or during an
            # outage): their notifications are gone, so everything is checked again.
            self._on_reconnect()
            self.connected.set()
            await lost.wait()
        finally:
            self.connected.clear()
            conn.terminate()
