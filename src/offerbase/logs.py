"""Structured logs through structlog: one JSON object per line on stderr, or readable key=value
lines when stderr is a terminal. The standard library's loggers (uvicorn, SQLAlchemy, ours)
go through the same renderer, so an operator gets one format to parse."""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import structlog

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


_DATA_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg")


def configure(level: str = "info", *, as_json: bool | None = None) -> None:
    """Route every log record of this process through structlog (called once per worker)."""
    if as_json is None:
        as_json = not sys.stderr.isatty()
    # JSON gets the traceback as a string field; the console renderer prints it itself.
    renderers: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if as_json
        else [structlog.dev.ConsoleRenderer()]
    )
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *renderers,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # At debug, SQLAlchemy logs result rows and aiosqlite every call with its arguments: profile
    # bodies and offer content, which a log stream must not carry. They log warnings and up.
    for name in _DATA_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # uvicorn's own handlers would print a second, differently formatted copy.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # uvicorn writes its access log whenever that logger has a handler, its ancestors'
    # included; requests are logged by offerbase.access instead, and only when asked for.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False


class RateLimitedErrors:
    """Logs repeated identical errors once per `interval` seconds instead of once each.

    During an outage every request fails the same way; a record (and a traceback) per request
    wrote 25 MB of logs in a 10 s database outage. The first error of a kind is logged at once,
    with its traceback; the same kind again within `interval` is only counted, and the next
    record of that kind says how many were suppressed since the last one (`suppressed`). A kind
    is whatever the caller passes as `key` (the exception type, its message, the route).
    """

    MAX_KINDS = 1024  # distinct kinds remembered; past that the oldest is forgotten

    def __init__(
        self,
        logger: structlog.stdlib.BoundLogger,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self.interval = interval
        self._clock = clock
        # key -> [time of the last record written, errors suppressed since]
        self._kinds: OrderedDict[Hashable, list[float]] = OrderedDict()

    def error(self, key: Hashable, event: str, exc: BaseException | None, **fields: Any) -> bool:
        """Log `event` with `exc`'s traceback unless one like it was logged within the
        interval; returns whether a record was written."""
        now = self._clock()
        seen = self._kinds.get(key)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            return False
        suppressed = int(seen[1]) if seen is not None else 0
        self._kinds[key] = [now, 0]
        self._kinds.move_to_end(key)
        while len(self._kinds) > self.MAX_KINDS:
            self._kinds.popitem(last=False)
        self._log.error(event, exc_info=exc, suppressed=suppressed, **fields)
        return True
