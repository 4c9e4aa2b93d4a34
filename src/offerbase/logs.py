"""Structured logs through structlog: one JSON object per line on stderr, or readable key=value
lines when stderr is a terminal. The standard library's loggers (uvicorn, SQLAlchemy, ours)
go through the same renderer, so an operator gets one format to parse."""

from __future__ import annotations

import logging
import sys

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
