"""Which exceptions mean "a dependency is unavailable", for every driver, in one place.

The API answers these with 503 and Retry-After (api/store_problems.py), the event writer keeps
its events for the next round instead of rejecting them, and /health reports the dependency as
down. Anything else stays a bug (500) or, for an event, a bad record.

- PostgreSQL: a refused or reset connection (OSError), asyncpg's connection errors, a server
  shutting down or refusing connections (SQLSTATE classes 08 and 57P), and SQLAlchemy's
  wrappers of these (`OperationalError`, `InterfaceError`, or any `DBAPIError` flagged as a
  disconnect).
- SQLite: "database is locked" / "busy" (a writer held the lock past the busy timeout), a full
  disk, a file that cannot be opened.
- Redis: `ConnectionError` and `TimeoutError` (redis-py's, which `BusyLoadingError` and the
  like derive from).
- A timeout of our own (`asyncio.TimeoutError`, now the builtin `TimeoutError`).
"""

from __future__ import annotations

import sqlite3

import asyncpg
import sqlalchemy.exc as sa_exc

# SQLSTATE classes: 08 connection exception, 57P operator intervention (admin shutdown, crash
# shutdown, cannot connect now), 53 insufficient resources (too many connections, disk full).
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53")
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database is busy",
    "database or disk is full",
    "disk i/o error",
    "unable to open database file",
)


def _redis_unavailable(exc: BaseException) -> bool:
    try:  # Redis is optional
        import redis.exceptions
    except ImportError:  # pragma: no cover - redis is a dependency today
        return False
    return isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError)


def _one(exc: BaseException) -> bool:
    if isinstance(exc, OSError | TimeoutError):  # ConnectionRefusedError, resets, timeouts
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.InterfaceError):
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "").startswith(_UNAVAILABLE_SQLSTATES)
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return any(text in message for text in _SQLITE_UNAVAILABLE)
    return _redis_unavailable(exc)


def unavailable(exc: BaseException) -> bool:
    """Does `exc` (or what it wraps) say a database or Redis could not be reached or used now?"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _one(current):
            return True
        if isinstance(current, sa_exc.DBAPIError) and isinstance(current.orig, BaseException):
            current = current.orig
        else:
            # the cause only, not the context: a bug raised while handling a timeout is a bug
            current = current.__cause__
    return False
